#!/usr/bin/env bash
# Snap store benchmark: `airlock serve`'s store API under load, and snap downloads against
# nginx serving the same blob.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/snaps.sh [SECONDS] [SNAP_MB]     (default 10 s of load, 512 MB snap)
#
# Info and refresh: wrk, 2 threads, 50 keep-alive connections, requests/s and p99 latency
# (`GET /v2/snaps/info/NAME`, `POST /v2/snaps/refresh` with an install action, as snapd sends
# them). Downloads: curl of the snap, best of 3, from airlock's download URL and from nginx
# (2 workers, sendfile) serving the same blob file; airlock's memory after all of it.
# Everything on 127.0.0.1. Needs: nginx wrk curl mksquashfs
# (apt-get install nginx-light wrk curl squashfs-tools).
set -euo pipefail
SECONDS_OF_LOAD=${1:-10}
SNAP_MB=${2:-512}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup snaps "apt-get install nginx-light wrk curl squashfs-tools" nginx wrk curl mksquashfs
(cd "$ROOT" && cargo build --release --quiet -p airlock-core --example snap-assertions)
SIGN="$ROOT/target/release/examples/snap-assertions"

# A snap holding SNAP_MB of incompressible data, signed by a bench root the site trusts.
mkdir -p tree/meta
printf 'name: bench-snap\nversion: "1.0"\nsummary: benchmark\narchitectures: [amd64]\nbase: core22\n' > tree/meta/snap.yaml
head -c $((SNAP_MB * 1024 * 1024)) /dev/urandom > tree/blob
mksquashfs tree bench-snap_1.snap -noappend -all-root -no-progress -noD >/dev/null
rm -rf tree
"$AIRLOCK" --quiet init site >/dev/null
"$SIGN" site bench-snap=bench-snap_1.snap
printf '[site]\ndata_dir = "data"\nlisten = "127.0.0.1:0"\nsigning_key = "airlock.key"\n\n[snaps]\ntrusted_keys = "root.assert"\n' > site/airlock.toml
"$AIRLOCK" --quiet --config site/airlock.toml snap import bench-snap_1.snap --channel stable >/dev/null

best_download() { # URL -> best bytes/s of 3
  local best=0 bps
  for _ in 1 2 3; do
    bps=$(curl -fs -o /dev/null -w '%{speed_download}' "$1")
    best=$(awk -v a="$best" -v b="$bps" 'BEGIN{print (b>a)?b:a}')
  done
  echo "$best"
}
load() { # NAME wrk-args... -> "REQS P99"
  local out
  out=$(wrk -t2 -c50 -d"${SECONDS_OF_LOAD}s" --latency "$@")
  echo "$(echo "$out" | awk '/Requests\/sec/{print $2}') $(echo "$out" | awk '$1=="99%"{print $2}')"
}

port=$(free_port)
"$AIRLOCK" --quiet --config site/airlock.toml serve --listen "127.0.0.1:$port" 2>/dev/null &
AIRLOCK_PID=$!
PIDS+=($AIRLOCK_PID)
BASE="http://127.0.0.1:$port"
wait_for "$BASE/v2/snaps/info/bench-snap"
cat > refresh.lua <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Snap-Device-Architecture"] = "amd64"
wrk.body = '{"context":[],"actions":[{"action":"install","instance-key":"install-1","name":"bench-snap","channel":"stable","epoch":null}],"fields":["download"]}'
LUA
read -r INFO_REQS INFO_P99 <<<"$(load -H 'Snap-Device-Architecture: amd64' "$BASE/v2/snaps/info/bench-snap?architecture=amd64")"
read -r REFRESH_REQS REFRESH_P99 <<<"$(load -s refresh.lua "$BASE/v2/snaps/refresh")"
URL=$(curl -fs "$BASE/v2/snaps/info/bench-snap?architecture=amd64" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel-map"][0]["download"]["url"])')
# Sample the server's anonymous memory while it sends the snap (VmHWM would count the
# mapped file pages too).
( peak=0; while kill -0 "$AIRLOCK_PID" 2>/dev/null; do
    kb=$(awk '/RssAnon/{print $2}' "/proc/$AIRLOCK_PID/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb && echo "$peak" > peak_anon
    sleep 0.02
  done ) &
SAMPLER=$!
AIRLOCK_BPS=$(best_download "$URL")
# Anonymous memory is what the server allocates; mapped file pages are the page cache that
# large downloads are sent from (mmap), shared and dropped under pressure.
ANON_KB=$(awk '/RssAnon/{print $2}' "/proc/$AIRLOCK_PID/status")
FILE_KB=$(awk '/RssFile/{print $2}' "/proc/$AIRLOCK_PID/status")
kill "$AIRLOCK_PID"; wait "$AIRLOCK_PID" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
PEAK_KB=$(cat peak_anon)

# nginx on the same blob file.
BLOB=$(python3 - <<'PY'
import json
c = json.load(open("site/data/state/snaps/catalog.json"))
r = c["snaps"]["bench-snap"]["revisions"]["1"]
print(r["sha256"])
PY
)
BLOB_PATH=$(find site/data/store -name "$BLOB*" -type f | head -1)
port=$(free_port)
start_nginx "$WORK" "$port"
PIDS+=("$NGINX_PID")
PIDS+=($!)
wait_for "http://127.0.0.1:$port/$BLOB_PATH"
NGINX_BPS=$(best_download "http://127.0.0.1:$port/$BLOB_PATH")

echo "$(nproc) cores, $(uname -r), nginx $(nginx -v 2>&1 | awk -F/ '{print $2}'), load and server on the same cores"
echo "info:    $INFO_REQS req/s, p99 $INFO_P99 (50 connections)"
echo "refresh: $REFRESH_REQS req/s, p99 $REFRESH_P99 (50 connections)"
awk -v a="$AIRLOCK_BPS" -v n="$NGINX_BPS" -v mb="$SNAP_MB" 'BEGIN{printf "download of a %d MB snap: airlock %.2f GB/s, nginx %.2f GB/s: airlock %.0f%% of nginx\n", mb, a/1e9, n/1e9, 100*a/n}'
echo "airlock memory: peak $((PEAK_KB / 1024)) MB anonymous while sending the snap; after the run $((ANON_KB / 1024)) MB anonymous, $((FILE_KB / 1024)) MB of mapped file pages"
