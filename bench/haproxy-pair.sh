#!/usr/bin/env bash
# The HAProxy equivalent of bench/pair.sh, for comparison: two HAProxy 2.6
# processes configured the way a weft pair works.
#
#   client ──plain──▶ outbound haproxy (127.0.0.1:PORT_OUT)
#                        ──mTLS (HTTP/2)──▶ inbound haproxy ──plain──▶ APP_ADDR
#
# Usage:
#   bench/haproxy-pair.sh start APP_ADDR   # APP_ADDR = 127.0.0.1:PORT
#   bench/haproxy-pair.sh stop             # idempotent
#
# Same interface as pair.sh: the LAST line of stdout is the address to call,
# admin addresses go to stderr. Each haproxy gets an "admin" frontend with
# /ready (monitor-uri) and /stats. Environment: WEFT_HAPROXY_DIR (state dir,
# default ${TMPDIR:-/tmp}/weft-bench-haproxy), WEFT_PAIR_TIMEOUT (default 20).
# State dir layout as pair.sh: {client,server}.{cfg,pid,log,admin}, addr,
# certs/.
#
# Choices, to compare like with like:
# - Each haproxy runs in the foreground (-db) under nohup, not as a system
#   service, so its pid is the one process doing the work (no master).
# - nbthread 1 each: the two weft proxies are Go programs on a 2-core box
#   shared with the load generator and the server, so one thread each is the
#   fair share; HAProxy would otherwise start one thread per core.
# - mTLS between the two, both sides verifying the peer's chain against the
#   same root (verify required + ca-file), with the same ECDSA P-256 certs
#   (leaf + intermediate). HAProxy does not check the peer's SPIFFE ID (URI
#   SAN) the way weft does; chain verification only, which if anything
#   favours HAProxy slightly.
# - HTTP/2 over the mTLS hop (alpn h2), like weft's one multiplexed HTTP/2
#   connection between meshed proxies; http-reuse always so streams/conns are
#   shared across client connections.
# - Keep-alive and pooling to the application (http-reuse always, the
#   default http-keep-alive mode), as weft pools upstream connections.
# - No logging per request (weft's access_log is off by default too).
# - The haproxy binary comes from Debian (apt-get install haproxy, 2.6).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

state=${WEFT_HAPROXY_DIR:-${TMPDIR:-/tmp}/weft-bench-haproxy}
timeout=${WEFT_PAIR_TIMEOUT:-20}

usage() {
	echo "usage: $0 start 127.0.0.1:APP_PORT | $0 stop" >&2
	exit 2
}

ensure_haproxy() {
	command -v haproxy >/dev/null && return 0
	echo "haproxy-pair: installing haproxy (apt-get)" >&2
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy >&2 ||
			{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy >&2; }
	else
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy >&2
	fi
	# The package enables a system service; we never use it.
	if command -v systemctl >/dev/null && systemctl is-active --quiet haproxy 2>/dev/null; then
		systemctl stop haproxy >&2 || true
	fi
	command -v haproxy >/dev/null || die "haproxy not installed"
}

stop() {
	stop_pidfiles "$state/client.pid" "$state/server.pid"
}

# common_head ADMIN: the global/defaults/admin sections both configs share.
common_head() {
	cat <<EOF
global
    nbthread 1
    # Bounded so the fd limit (ulimit -n) need not be raised; the bench uses
    # a few dozen connections.
    maxconn 4096
    # Keep TLS session resumption and the defaults; TLS 1.2+ like weft (Go).
    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-server-options ssl-min-ver TLSv1.2

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 90s
    timeout server 90s
    timeout http-keep-alive 90s
    timeout http-request 10s

# Admin: /ready for the start script, /stats for humans.
frontend admin
    bind $1
    monitor-uri /ready
    stats enable
    stats uri /stats
EOF
}

start() {
	local app=$1
	case $app in
	127.0.0.1:[0-9]*) ;;
	*) die "APP_ADDR must be 127.0.0.1:PORT, got '$app'" ;;
	esac
	ensure_haproxy
	command -v openssl >/dev/null || die "openssl not found"
	command -v curl >/dev/null || die "curl not found"

	stop
	rm -rf "$state"
	mkdir -p "$state"
	gen_certs "$state/certs"
	local c=$state/certs

	local ports admin_s admin_c port_in port_out
	mapfile -t ports < <(free_ports 4)
	admin_s=127.0.0.1:${ports[0]}
	admin_c=127.0.0.1:${ports[1]}
	port_in=127.0.0.1:${ports[2]}
	port_out=127.0.0.1:${ports[3]}

	{
		common_head "$admin_s"
		cat <<EOF

# Inbound: mTLS listener (client cert required, verified against the root),
# HTTP/2 or HTTP/1.1 by ALPN, to the application in plaintext.
frontend inbound
    bind $port_in ssl crt $c/server.pem ca-file $c/ca.crt verify required alpn h2,http/1.1
    default_backend app

backend app
    http-reuse always
    server app $app
EOF
	} >"$state/server.cfg"
	{
		common_head "$admin_c"
		cat <<EOF

# Outbound: plaintext listener for the local client, to the peer's inbound
# over mTLS (server cert verified against the root, own cert presented), HTTP/2.
frontend outbound
    bind $port_out
    default_backend mesh

backend mesh
    http-reuse always
    server inbound $port_in ssl verify required ca-file $c/ca.crt crt $c/client.pem alpn h2
EOF
	} >"$state/client.cfg"

	local who
	for who in server client; do
		haproxy -c -q -f "$state/$who.cfg" >"$state/$who.check" 2>&1 || {
			cat "$state/$who.check" >&2
			die "haproxy -c rejected $state/$who.cfg"
		}
	done
	for who in server client; do
		# -db: stay in the foreground (no daemon, no master); nohup + & puts it
		# in the background with its pid known and its messages in the log.
		nohup haproxy -db -f "$state/$who.cfg" </dev/null >"$state/$who.log" 2>&1 &
		echo $! >"$state/$who.pid"
	done
	echo "$admin_s" >"$state/server.admin"
	echo "$admin_c" >"$state/client.admin"
	echo "$port_out" >"$state/addr"

	wait_pair_up "$state" "$timeout" haproxy stop

	echo "haproxy-pair: $(haproxy -v | head -n1)" >&2
	echo "haproxy-pair: up, state in $state" >&2
	echo "haproxy-pair: server admin http://$admin_s (/stats)  pid $(cat "$state/server.pid")  inbound $port_in -> $app" >&2
	echo "haproxy-pair: client admin http://$admin_c (/stats)  pid $(cat "$state/client.pid")  outbound $port_out" >&2
	echo "$port_out"
}

case ${1:-} in
start)
	[ $# -eq 2 ] || usage
	start "$2"
	;;
stop)
	[ $# -eq 1 ] || usage
	stop
	;;
*) usage ;;
esac
