#!/usr/bin/env bash
# A meshed pair of weft-proxies on loopback, in explicit mode (no iptables):
#
#   client ──plain──▶ client proxy (outbound, 127.0.0.1:PORT_OUT)
#                        ──mTLS (HTTP/2)──▶ server proxy (inbound) ──plain──▶ APP_ADDR
#
# Usage:
#   bench/pair.sh start APP_ADDR   # APP_ADDR = 127.0.0.1:PORT of the application
#   bench/pair.sh stop             # idempotent
#
# start builds .bin/weft-proxy when it is missing or older than the sources,
# generates a fresh PKI (ECDSA P-256: root, intermediate, two SPIFFE leaves),
# picks free loopback ports, writes both configs, starts both proxies in the
# background and waits until both admin /ready answer 200. The LAST line of
# stdout is the address a client should call (127.0.0.1:PORT_OUT). The admin
# addresses (for /metrics) go to stderr.
#
# Environment:
#   WEFT_PAIR_POLICIES  non-empty: add a realistic policy set (see policy_routes)
#   WEFT_PAIR_PROTOCOL  protocol of the service: http1 (default), http2, grpc,
#                       opaque, or empty for detection.
#   WEFT_PAIR_DIR       state dir (default ${TMPDIR:-/tmp}/weft-bench-pair):
#                       client.yaml server.yaml, client.pid server.pid,
#                       client.log server.log, client.admin server.admin,
#                       addr (PORT_OUT address), certs/.
#   WEFT_PAIR_TIMEOUT   seconds to wait for readiness (default 20).
#
# Other benchmarks and checks rely on this interface: keep it stable.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

state=${WEFT_PAIR_DIR:-${TMPDIR:-/tmp}/weft-bench-pair}
protocol=${WEFT_PAIR_PROTOCOL-http1}
policies=${WEFT_PAIR_POLICIES:-}
timeout=${WEFT_PAIR_TIMEOUT:-20}
bin=$root/.bin/weft-proxy

usage() {
	echo "usage: $0 start 127.0.0.1:APP_PORT | $0 stop" >&2
	exit 2
}

# build: go build when the binary is missing or older than any source file.
build() {
	local stale=
	if [ ! -x "$bin" ]; then
		stale=missing
	elif [ -n "$(cd "$root" && find cmd internal api go.mod go.sum -newer "$bin" \
		\( -name '*.go' -o -name go.mod -o -name go.sum \) -print -quit 2>/dev/null)" ]; then
		stale=outdated
	fi
	if [ -n "$stale" ]; then
		echo "pair: building weft-proxy ($stale)" >&2
		(cd "$root" && go build -tags grpcnotrace -o .bin/ ./cmd/weft-proxy) >&2 || die "go build failed"
	fi
}

stop() {
	stop_pidfiles "$state/client.pid" "$state/server.pid"
}

# policy_routes APP PORT_IN: a realistic policy set for the app service (the
# issue's benchmark): 9 routes with header matches the load does not send,
# then a catch-all with a 90/10 split, retries and a timeout. The split's
# second backend is a second service on the same endpoint.
policy_routes() {
	local app=$1 port_in=$2 i
	echo "  routes:"
	for i in 1 2 3 4 5 6 7 8 9; do
		cat <<EOF
  - route: bench/header-$i
    matches: [{headers: [{name: x-tenant, value: "tenant-$i"}, {name: x-plan, value: gold}]}]
    backends: [{service: app-b, weight: 1}]
EOF
	done
	cat <<EOF
  - route: bench/split
    matches: [{path: {type: PathPrefix, value: /}}]
    backends: [{service: app, weight: 90}, {service: app-b, weight: 10}]
    retry: {statuses: ["503"]}
    timeouts: {request: 5s}
- name: app-b
  protocol: "$protocol"
  endpoints:
  - {address: "$app", proxy_address: "$port_in", identity: "spiffe://bench.weft/ns/default/sa/server"}
EOF
}

start() {
	local app=$1
	case $app in
	127.0.0.1:[0-9]*) ;;
	*) die "APP_ADDR must be 127.0.0.1:PORT (the server proxy forwards to 127.0.0.1), got '$app'" ;;
	esac
	case $protocol in
	"" | http1 | http2 | grpc | opaque) ;;
	*) die "WEFT_PAIR_PROTOCOL must be http1, http2, grpc, opaque or empty, got '$protocol'" ;;
	esac
	command -v openssl >/dev/null || die "openssl not found"
	command -v curl >/dev/null || die "curl not found"

	build
	# A previous pair in the same state dir is replaced, never left running.
	stop
	rm -rf "$state"
	mkdir -p "$state"
	gen_certs "$state/certs"

	local ports admin_s admin_c port_in port_out
	mapfile -t ports < <(free_ports 4)
	admin_s=127.0.0.1:${ports[0]}
	admin_c=127.0.0.1:${ports[1]}
	port_in=127.0.0.1:${ports[2]}
	port_out=127.0.0.1:${ports[3]}
	local c=$state/certs

	cat >"$state/server.yaml" <<EOF
version: bench-server
admin: {address: "$admin_s"}
tls: {cert_file: $c/server.crt, key_file: $c/server.key, trust_bundle_file: $c/ca.crt}
inbound: {address: "$port_in"}
EOF
	cat >"$state/client.yaml" <<EOF
version: bench-client
admin: {address: "$admin_c"}
tls: {cert_file: $c/client.crt, key_file: $c/client.key, trust_bundle_file: $c/ca.crt}
services:
- name: app
  protocol: "$protocol"
  endpoints:
  - {address: "$app", proxy_address: "$port_in", identity: "spiffe://bench.weft/ns/default/sa/server"}
EOF
	if [ -n "$policies" ]; then
		policy_routes "$app" "$port_in" >>"$state/client.yaml"
	fi
	cat >>"$state/client.yaml" <<EOF
outbound:
  explicit:
  - {address: "$port_out", service: app}
EOF
	local who
	for who in server client; do
		"$bin" check-config "$state/$who.yaml" >"$state/$who.check" 2>&1 || {
			cat "$state/$who.check" >&2
			die "check-config rejected $state/$who.yaml"
		}
	done

	for who in server client; do
		nohup "$bin" run --config "$state/$who.yaml" --log-format text --log-level warn \
			</dev/null >"$state/$who.log" 2>&1 &
		echo $! >"$state/$who.pid"
	done
	echo "$admin_s" >"$state/server.admin"
	echo "$admin_c" >"$state/client.admin"
	echo "$port_out" >"$state/addr"

	wait_pair_up "$state" "$timeout" proxy stop

	echo "pair: weft-proxy pair up (protocol ${protocol:-detect}), state in $state" >&2
	echo "pair: server admin http://$admin_s  pid $(cat "$state/server.pid")  inbound $port_in -> $app" >&2
	echo "pair: client admin http://$admin_c  pid $(cat "$state/client.pid")  outbound $port_out" >&2
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
