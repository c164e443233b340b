#!/usr/bin/env bash
# Starts weft on one machine until `weft up` exists: a demo backend and a
# meshed weft-proxy pair in front of it (client -> outbound proxy -> mTLS ->
# inbound proxy -> backend). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .bin
go build -tags grpcnotrace -o .bin/ ./cmd/weft-proxy
go build -o .bin/ ./examples/echo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
.bin/echo -addr "127.0.0.1:$port" &
backend=$!
cleanup() { bash bench/pair.sh stop >/dev/null 2>&1 || true; kill "$backend" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

export WEFT_PAIR_DIR=${WEFT_PAIR_DIR:-${TMPDIR:-/tmp}/weft-demo}
addr=$(bash bench/pair.sh start "127.0.0.1:$port" | tail -n 1)
admin=$(cat "$WEFT_PAIR_DIR/client.admin")
cat <<MSG

weft is running: a demo backend behind a meshed weft-proxy pair (mTLS with SPIFFE identities).

  curl http://$addr/hello                     # through both proxies
  curl http://$admin/metrics | grep weft_     # the client proxy's golden metrics
  curl http://$admin/config_dump              # what the client proxy is running

Press Ctrl-C to stop.
MSG
wait "$backend"
