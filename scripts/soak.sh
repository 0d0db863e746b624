#!/usr/bin/env bash
# Soak test (not part of the default test run): holds a release build of keysmith at saturation
# with wrk on loopback for DURATION seconds and reports throughput, p50/p99 latency, responses by
# status (errors must be 0 apart from deliberate 429s) and the server's RSS over time (must stay
# flat). Needs wrk (`apt-get install wrk`).
#
#   scripts/soak.sh                          # 60 s, 64 connections, minting, rate limit off
#   DURATION=30 RATE_LIMIT=600 scripts/soak.sh   # with the per-address limiter on (mostly 429s)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
RATE_LIMIT=${RATE_LIMIT:-0}
PORT=${PORT:-18181}

command -v wrk >/dev/null || { echo "soak: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --locked --quiet --bin keysmith

work=$(mktemp -d)
cleanup() { [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/config.toml" <<TOML
version = 1
issuer = "http://127.0.0.1:$PORT"
[server]
rate_limit_per_minute = $RATE_LIMIT
[projects.demo]
[[templates]]
id = "upload-widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST", "OBJECTS_FETCH"]
[templates.upload]
limit_per_min = 30
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["127.0.0.0/8", "::1"]
[templates.listing]
directory_scope = ["/uploads/*", "/public/*"]
TOML
target/release/keysmith keygen --keys "$work/keys" >/dev/null
KEYSMITH_LOG=warn target/release/keysmith serve --config "$work/config.toml" --keys "$work/keys" \
    --listen "127.0.0.1:$PORT" --watch-ms 0 2>"$work/server.log" &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
(
    while kill -0 "$server" 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 1; done
) > "$work/rss.txt" &
sampler=$!

cat > "$work/count.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local totals = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do totals[status] = (totals[status] or 0) + n end
  end
  for status, n in pairs(totals) do io.write(string.format("status %d: %d\n", status, n)) end
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
LUA

echo "soak: $DURATION s, $CONNECTIONS connections, $THREADS wrk threads, rate limit ${RATE_LIMIT}/min, $(nproc) cores"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/count.lua" \
    "http://127.0.0.1:$PORT/demo/v1/key/upload-widget" | tee "$work/wrk.txt"
kill "$sampler" 2>/dev/null || true

awk 'NR==1 {first=$2} {if ($2>peak) peak=$2; last=$2; n++; if (n==10) tenth=$2} END {
    printf "RSS: after 10 s %d KiB, peak %d KiB, at the end %d KiB (start %d KiB)\n", tenth, peak, last, first }' "$work/rss.txt"
errors=$(awk '/^status/ { if ($2 != "200:" && $2 != "429:") sum += $3 } END { print sum + 0 }' "$work/wrk.txt")
socket=$(awk '/^socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$work/wrk.txt")
echo "errors other than deliberate 429s: $errors responses, $socket socket errors"
[[ "$errors" == 0 && "$socket" == 0 ]]
