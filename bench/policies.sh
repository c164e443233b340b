#!/usr/bin/env bash
# Policy overhead: the bare weft pair against the same pair with a realistic
# policy set (10 routes with header matches, a 90/10 split, retries and a
# timeout; see policy_routes in pair.sh), interleaved, at the run.sh load.
# Prints the added p99 over the direct path and the proxies' CPU per 1000
# requests for both. Target (issue): within 10% of the bare pair.
#
#   DURATION [20]  seconds per run    ROUNDS [2]  interleaved rounds
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-2}
QPS=${QPS:-1000}
CONNS=${CONNS:-16}
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-policies.XXXXXX")
fortio=$root/.bin/fortio
[ -x "$fortio" ] || (cd "$root" && GOBIN=$root/.bin GOFLAGS='' go install fortio.org/fortio@v1.68.2)

srv=
cleanup() {
	WEFT_PAIR_DIR=$work/bare "$here/pair.sh" stop || true
	WEFT_PAIR_DIR=$work/policies "$here/pair.sh" stop || true
	if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

port=$(free_port)
"$fortio" server -http-port "127.0.0.1:$port" -grpc-port disabled -redirect-port disabled >"$work/server.log" 2>&1 &
srv=$!
app=127.0.0.1:$port
for _ in $(seq 100); do curl -sf -o /dev/null "http://$app/echo" && break; sleep 0.1; done
bare=$(WEFT_PAIR_DIR=$work/bare "$here/pair.sh" start "$app" | tail -n1)
pol=$(WEFT_PAIR_DIR=$work/policies WEFT_PAIR_POLICIES=1 "$here/pair.sh" start "$app" | tail -n1)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pair_ticks() { echo $(($(ticks "$(cat "$1/client.pid")") + $(ticks "$(cat "$1/server.pid")"))); }
load() { # ADDR JSON
	timeout $((DURATION + 60)) "$fortio" load -quiet -qps "$QPS" -c "$CONNS" -t "${DURATION}s" \
		-payload-size 1024 -json "$2" "http://$1/echo" >/dev/null 2>&1
}

tick=$(getconf CLK_TCK)
ticks_bare=0
ticks_pol=0
for ((r = 1; r <= ROUNDS; r++)); do
	for t in direct bare policies; do
		case $t in direct) a=$app ;; bare) a=$bare ;; policies) a=$pol ;; esac
		before=0
		if [ "$t" != direct ]; then before=$(pair_ticks "$work/$t"); fi
		load "$a" "$work/$t-$r.json"
		case $t in
		bare) ticks_bare=$((ticks_bare + $(pair_ticks "$work/$t") - before)) ;;
		policies) ticks_pol=$((ticks_pol + $(pair_ticks "$work/$t") - before)) ;;
		esac
		echo "policies: round $r/$ROUNDS $t done" >&2
	done
done
python3 - "$work" "$ROUNDS" "$QPS" "$DURATION" "$tick" "$ticks_bare" "$ticks_pol" <<'PY'
import json, sys
work, rounds, qps, dur, tick, tb, tp = sys.argv[1], *map(int, sys.argv[2:])
def p99(t):
    vals = []
    for r in range(1, rounds + 1):
        d = json.load(open(f"{work}/{t}-{r}.json"))
        vals.append([p["Value"] for p in d["DurationHistogram"]["Percentiles"] if p["Percentile"] == 99][0] * 1000)
    return sorted(vals)[len(vals) // 2]
ld, lb, lp = p99("direct"), p99("bare"), p99("policies")
reqs = rounds * qps * dur
cb, cp = tb * 1000 / tick * 1000 / reqs, tp * 1000 / tick * 1000 / reqs
print("| | bare pair | pair with policies | policies / bare |")
print("|---|---|---|---|")
print(f"| added p99 ms over direct (direct p99 {ld:.3f}) | {lb - ld:.3f} | {lp - ld:.3f} | {(lp - ld) / (lb - ld):.2f}x |")
print(f"| CPU ms per 1000 requests, both proxies | {cb:.1f} | {cp:.1f} | {cp / cb:.2f}x |")
PY
