#!/usr/bin/env bash
# weft-proxy benchmark, Istio's method on one machine: fortio as the load
# generator and as the echo server, the same load through
#   direct   client → fortio server
#   weft     client → weft outbound → mTLS/HTTP2 → weft inbound → server
#   haproxy  client → haproxy outbound → mTLS/HTTP2 → haproxy inbound → server
# interleaved round by round, then a saturation run and a gRPC run (ghz).
# See bench/README.md. Results: stdout and bench/out/results.md (raw JSON in
# bench/out/raw/).
#
# Environment (defaults in brackets):
#   DURATION [20]      seconds per latency run (per target, per round)
#   ROUNDS [1]         interleaved rounds direct, weft, haproxy
#   QPS [1000]         request rate of the latency and gRPC runs
#   CONNS [16]         connections (fortio -c, ghz -c and --connections)
#   PAYLOAD [1024]     request body bytes (echoed back)
#   SAT_DURATION [10]  seconds per saturation run (-qps 0)
#   GRPC_DURATION [$DURATION]  seconds per gRPC run
#   WARMUP [2]         seconds of unmeasured load per target before round 1
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-1}
QPS=${QPS:-1000}
CONNS=${CONNS:-16}
PAYLOAD=${PAYLOAD:-1024}
SAT_DURATION=${SAT_DURATION:-10}
GRPC_DURATION=${GRPC_DURATION:-$DURATION}
WARMUP=${WARMUP:-2}
for v in DURATION ROUNDS QPS CONNS PAYLOAD SAT_DURATION GRPC_DURATION WARMUP; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number of seconds/units, got '${!v}'"
done
if [ "$QPS" -eq 0 ]; then
	die "QPS must be positive"
fi
if [ "$DURATION" -gt 600 ] || [ "$SAT_DURATION" -gt 600 ] || [ "$GRPC_DURATION" -gt 600 ]; then
	die "durations are capped at 600 s"
fi

FORTIO_VERSION=v1.68.2
GHZ_VERSION=v0.120.0
bin=$root/.bin
out=$root/bench/out
raw=$out/raw
clk=$(getconf CLK_TCK)

for t in curl openssl python3 go; do
	command -v "$t" >/dev/null || die "$t is required"
done

# Tools: pinned versions into .bin (GOFLAGS= so the repo's flags do not leak
# into go install; @latest does not resolve here).
install_tool() {
	local name=$1 pkg=$2
	[ -x "$bin/$name" ] && return 0
	echo "bench: installing $pkg into $bin" >&2
	GOBIN=$bin GOFLAGS="" go install "$pkg" >&2 || die "go install $pkg failed"
}
install_tool fortio "fortio.org/fortio@$FORTIO_VERSION"
install_tool ghz "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
fortio=$bin/fortio
ghz=$bin/ghz

mkdir -p "$out"
rm -rf "$raw"
mkdir -p "$raw"
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX")
weft_dir=$work/weft
grpc_dir=$work/weft-grpc
hap_dir=$work/haproxy
server_pid=
load_pid=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Keep the proxies' logs with the raw results, then stop everything.
	for d in "$weft_dir" "$grpc_dir" "$hap_dir"; do
		[ -d "$d" ] || continue
		for f in "$d"/*.log "$d"/*.yaml "$d"/*.cfg; do
			[ -f "$f" ] && cp "$f" "$raw/$(basename "$d")-$(basename "$f")" 2>/dev/null
		done
	done
	WEFT_PAIR_DIR=$weft_dir "$here/pair.sh" stop || true
	WEFT_PAIR_DIR=$grpc_dir "$here/pair.sh" stop || true
	WEFT_HAPROXY_DIR=$hap_dir "$here/haproxy-pair.sh" stop || true
	if [ -n "$load_pid" ]; then
		kill "$load_pid" 2>/dev/null || true
		wait "$load_pid" 2>/dev/null || true
	fi
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
	[ "$rc" -eq 0 ] || echo "bench: FAILED (exit $rc); partial raw results in $raw" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ticks PID: utime+stime of PID in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the parenthesised command name).
ticks() {
	local s
	s=$(cat "/proc/$1/stat") || die "process $1 is gone"
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $((${12} + ${13}))
}

# hwm PID: peak RSS (VmHWM) in kB.
hwm() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

# bg_run LOG CMD...: run CMD in the background with its output in LOG and
# wait for it, so that a TERM/INT to this script runs the cleanup at once
# (bash defers traps while a foreground command runs). The load functions exec
# `timeout`, which passes the TERM from cleanup on to the load generator.
bg_run() {
	local log=$1 rc=0
	shift
	"$@" >"$log" 2>&1 &
	load_pid=$!
	wait "$load_pid" || rc=$?
	load_pid=
	return "$rc"
}

# One line per measurement: phase target round file cpu_client cpu_server
# (ticks) and the pids; report.py turns them into tables.
meas=$raw/measurements.tsv
printf 'phase\ttarget\tround\tfile\tticks_client\tticks_server\n' >"$meas"

pids_of() { # TARGET -> "client_pid server_pid" (empty for direct)
	case $1 in
	direct) echo "" ;;
	weft) echo "$(cat "$weft_dir/client.pid") $(cat "$weft_dir/server.pid")" ;;
	haproxy) echo "$(cat "$hap_dir/client.pid") $(cat "$hap_dir/server.pid")" ;;
	weft-grpc) echo "$(cat "$grpc_dir/client.pid") $(cat "$grpc_dir/server.pid")" ;;
	esac
}

# measure PHASE TARGET ROUND FILE CMD...: run CMD (bounded) with the CPU time
# of TARGET's two proxy processes sampled before and after.
measure() {
	local phase=$1 target=$2 round=$3 file=$4
	shift 4
	local c0=0 s0=0 c1=0 s1=0 cp sp
	read -r cp sp <<<"$(pids_of "$target")" || true
	if [ -n "${cp:-}" ]; then
		c0=$(ticks "$cp")
		s0=$(ticks "$sp")
	fi
	bg_run "$raw/$file.log" "$@" || {
		tail -n 20 "$raw/$file.log" >&2
		die "$phase $target round $round failed: $*"
	}
	if [ -n "${cp:-}" ]; then
		c1=$(ticks "$cp")
		s1=$(ticks "$sp")
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$target" "$round" "$file" \
		$((c1 - c0)) $((s1 - s0)) >>"$meas"
}

addr_of() {
	case $1 in
	direct) echo "$http_addr" ;;
	weft) echo "$weft_addr" ;;
	haproxy) echo "$hap_addr" ;;
	esac
}

fortio_load() { # QPS SECONDS JSON ADDR
	exec timeout $(($2 + 60)) "$fortio" load -quiet -qps "$1" -c "$CONNS" -t "${2}s" \
		-payload-size "$PAYLOAD" -json "$3" "http://$4/echo"
}

# ---- facts about this run ------------------------------------------------
{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc=$(nproc)"
	echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "kernel=$(uname -r)"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go=$(go version | awk '{print $3}')"
	echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- cmd internal api 2>/dev/null || echo '+dirty')"
	echo "fortio=$(go version -m "$fortio" | awk '$1 == "mod" {print $3; exit}')"
	echo "ghz=$(go version -m "$ghz" | awk '$1 == "mod" {print $3; exit}')"
	echo "duration=$DURATION"
	echo "rounds=$ROUNDS"
	echo "qps=$QPS"
	echo "conns=$CONNS"
	echo "payload=$PAYLOAD"
	echo "sat_duration=$SAT_DURATION"
	echo "grpc_duration=$GRPC_DURATION"
	echo "clk_tck=$clk"
} >"$raw/facts.env"

# ---- servers and proxies -------------------------------------------------
mapfile -t sp < <(free_ports 2)
http_addr=127.0.0.1:${sp[0]}
grpc_addr=127.0.0.1:${sp[1]}
"$fortio" server -quiet -http-port "$http_addr" -grpc-port "$grpc_addr" \
	-redirect-port disabled -tcp-port disabled -udp-port disabled \
	</dev/null >"$raw/fortio-server.log" 2>&1 &
server_pid=$!
wait_ready "http://$http_addr/debug" 15 || {
	log_tail "$raw/fortio-server.log"
	die "fortio server did not start on $http_addr"
}

echo "bench: starting weft pair (http1) and haproxy pair" >&2
weft_addr=$(WEFT_PAIR_DIR=$weft_dir WEFT_PAIR_PROTOCOL=http1 "$here/pair.sh" start "$http_addr" | tail -n1)
hap_addr=$(WEFT_HAPROXY_DIR=$hap_dir "$here/haproxy-pair.sh" start "$http_addr" | tail -n1)
echo "haproxy=$(haproxy -v | awk 'NR == 1 {print $3}')" >>"$raw/facts.env"
for t in direct weft haproxy; do
	curl -sf --max-time 5 -o /dev/null -d ping "http://$(addr_of "$t")/echo" || die "$t: echo request failed"
done

# ---- latency at fixed QPS, interleaved -----------------------------------
if [ "$WARMUP" -gt 0 ]; then
	echo "bench: warm-up ${WARMUP}s per target" >&2
	for t in direct weft haproxy; do
		bg_run "$raw/warmup-$t.log" fortio_load "$QPS" "$WARMUP" "$raw/warmup-$t.json" "$(addr_of "$t")" ||
			die "warm-up of $t failed (see $raw/warmup-$t.log)"
	done
fi
for ((r = 1; r <= ROUNDS; r++)); do
	for t in direct weft haproxy; do
		echo "bench: round $r/$ROUNDS $t: ${QPS} qps, ${CONNS} conns, ${DURATION}s" >&2
		measure latency "$t" "$r" "latency-$t-$r" \
			fortio_load "$QPS" "$DURATION" "$raw/latency-$t-$r.json" "$(addr_of "$t")"
	done
done

# ---- saturation: as fast as 16 connections go ----------------------------
for t in direct weft haproxy; do
	echo "bench: saturation $t: max qps, ${CONNS} conns, ${SAT_DURATION}s" >&2
	measure saturation "$t" 1 "saturation-$t" \
		fortio_load 0 "$SAT_DURATION" "$raw/saturation-$t.json" "$(addr_of "$t")"
done

# Peak RSS over the whole HTTP part (latency + saturation).
{
	read -r c s <<<"$(pids_of weft)"
	echo "rss_weft_client=$(hwm "$c")"
	echo "rss_weft_server=$(hwm "$s")"
	read -r c s <<<"$(pids_of haproxy)"
	echo "rss_haproxy_client=$(hwm "$c")"
	echo "rss_haproxy_server=$(hwm "$s")"
} >>"$raw/facts.env"
# The HTTP pairs are done: stop them so they do not share the CPU with the
# gRPC run.
WEFT_PAIR_DIR=$weft_dir "$here/pair.sh" stop
WEFT_HAPROXY_DIR=$hap_dir "$here/haproxy-pair.sh" stop

# ---- gRPC: ghz against fortio's ping service ------------------------------
# fortio's gRPC server registers server reflection, so ghz needs no .proto;
# the service is fgrpc.PingServer/Ping. -n (not -z) so no call is cut off at
# the deadline.
echo "bench: starting weft pair (grpc)" >&2
grpc_weft_addr=$(WEFT_PAIR_DIR=$grpc_dir WEFT_PAIR_PROTOCOL=grpc "$here/pair.sh" start "$grpc_addr" | tail -n1)
payload=$(head -c "$PAYLOAD" /dev/zero | tr '\0' x)
printf '{"payload":"%s"}' "$payload" >"$work/ping.json"
ghz_run() { # ADDR TOTAL JSON
	exec timeout $((GRPC_DURATION + 60)) "$ghz" --insecure --call fgrpc.PingServer/Ping \
		-D "$work/ping.json" --rps "$QPS" -c "$CONNS" --connections "$CONNS" -n "$2" \
		--timeout 10s -O json -o "$3" "$1"
}
if [ "$WARMUP" -gt 0 ]; then
	bg_run "$raw/warmup-grpc-direct.log" ghz_run "$grpc_addr" $((QPS * WARMUP)) "$raw/warmup-grpc-direct.json" || true
	bg_run "$raw/warmup-grpc-weft.log" ghz_run "$grpc_weft_addr" $((QPS * WARMUP)) "$raw/warmup-grpc-weft.json" || true
fi
echo "bench: grpc direct: ${QPS} qps, ${CONNS} conns, ${GRPC_DURATION}s" >&2
measure grpc direct 1 grpc-direct ghz_run "$grpc_addr" $((QPS * GRPC_DURATION)) "$raw/grpc-direct.json"
echo "bench: grpc weft: ${QPS} qps, ${CONNS} conns, ${GRPC_DURATION}s" >&2
measure grpc weft-grpc 1 grpc-weft ghz_run "$grpc_weft_addr" $((QPS * GRPC_DURATION)) "$raw/grpc-weft.json"
{
	read -r c s <<<"$(pids_of weft-grpc)"
	echo "rss_weftgrpc_client=$(hwm "$c")"
	echo "rss_weftgrpc_server=$(hwm "$s")"
	echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$raw/facts.env"

# ---- report ---------------------------------------------------------------
python3 "$here/report.py" "$raw" >"$out/results.md"
cat "$out/results.md"
echo "bench: results in $out/results.md, raw data in $raw" >&2
