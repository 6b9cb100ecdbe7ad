#!/usr/bin/env bash
# verify benchmark: how close `airlock verify` comes to the machine's hashing limit.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/verify.sh [COUNT] [SIZE_MB] [ROUNDS]   (default 10 x 512 MB, 3 rounds)
#
# A site with one repo of COUNT packages of SIZE_MB random bytes each (5 GB by default),
# published. Offline: `airlock verify --offline` (every blob of the store re-hashed) against
# `openssl dgst -sha256` over the same blob files, one process per core (the machine's
# hashing limit as an operator's script reaches it; coreutils sha256sum is slower here).
# Online: `airlock verify --full` against the running server (every pool file fetched over
# HTTP and hashed) against curl | openssl dgst -sha256 of the same URLs, one per core.
# Everything is read from the page cache (the machine has the memory), so both sides are
# bound by hashing, not by the disk. Medians of ROUNDS; peak RSS of verify.
# Needs: curl, openssl, time (apt-get install curl openssl time).
set -euo pipefail
COUNT=${1:-10}
SIZE_MB=${2:-512}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup verify "apt-get install curl openssl time" curl openssl /usr/bin/time

echo "building a site of $COUNT packages of $SIZE_MB MB..."
"$AIRLOCK" --quiet init site >/dev/null
PORT=$(free_port)
printf '[site]\ndata_dir = "data"\nlisten = "127.0.0.1:%s"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n' "$PORT" > site/airlock.toml
fill_bench_repo site/airlock.toml "$COUNT" "$SIZE_MB"
BLOBS=$(find site/data/store/sha256 -type f)
BYTES=$(du -sbL site/data/store/sha256 | awk '{print $1}')
sync
cat $BLOBS > /dev/null   # into the page cache
"$AIRLOCK" --quiet --config site/airlock.toml serve & PIDS+=($!)
BASE="http://127.0.0.1:$PORT"
wait_for "$BASE/apt/bench/dists/stable/InRelease"
URLS=$(find -L site/data/public/apt/bench/pool -name '*.deb' | sed "s|^site/data/public|$BASE|")

seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'; }
peak_rss() { /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >/dev/null 2>&1 || true; cat "$WORK/rss"; }
BIGGEST=$(ls -S $BLOBS | head -1)
one_core() { openssl dgst -sha256 "$BIGGEST"; }
peer_offline() { echo "$BLOBS" | xargs -P "$(nproc)" -n 1 openssl dgst -sha256; }
peer_online() { echo "$URLS" | xargs -P "$(nproc)" -I{} sh -c 'curl -fs "{}" | openssl dgst -sha256'; }

off=() peer=() on=() peeron=()
for round in $(seq "$ROUNDS"); do
  peer+=("$(seconds peer_offline)")
  off+=("$(seconds "$AIRLOCK" --quiet --config site/airlock.toml verify --offline)")
  peeron+=("$(seconds peer_online)")
  on+=("$(seconds "$AIRLOCK" --quiet --config site/airlock.toml verify --full)")
  echo "round $round: offline airlock ${off[-1]} s, openssl ${peer[-1]} s; online airlock ${on[-1]} s, curl | openssl ${peeron[-1]} s"
done
"$AIRLOCK" --quiet --config site/airlock.toml verify --offline >/dev/null || { echo "verify --offline failed" >&2; exit 1; }
"$AIRLOCK" --quiet --config site/airlock.toml verify --full >/dev/null || { echo "verify --full failed" >&2; exit 1; }
ONE=$(seconds one_core)
ONE_BYTES=$(stat -c %s "$BIGGEST")
OFF=$(printf '%s\n' "${off[@]}" | median) PEER=$(printf '%s\n' "${peer[@]}" | median)
ON=$(printf '%s\n' "${on[@]}" | median) PEERON=$(printf '%s\n' "${peeron[@]}" | median)
RSS_OFF=$(peak_rss "$AIRLOCK" --quiet --config site/airlock.toml verify --offline)
RSS_ON=$(peak_rss "$AIRLOCK" --quiet --config site/airlock.toml verify --full)

gbps() { awk -v b="$BYTES" -v t="$1" 'BEGIN{printf "%.2f", b/t/1e9}'; }
echo
echo "$(nproc) cores, $(uname -r), $((BYTES / 1024 / 1024)) MB in $COUNT files, from the page cache; medians of $ROUNDS"
awk -v b="$ONE_BYTES" -v t="$ONE" 'BEGIN{printf "openssl sha256 on one core: %.2f GB/s\n", b/t/1e9}'
echo "offline: airlock verify --offline $OFF s ($(gbps "$OFF") GB/s, peak RSS $((RSS_OFF / 1024)) MB); openssl x $(nproc) $PEER s ($(gbps "$PEER") GB/s)"
echo "online:  airlock verify --full $ON s ($(gbps "$ON") GB/s, peak RSS $((RSS_ON / 1024)) MB); curl | openssl x $(nproc) $PEERON s ($(gbps "$PEERON") GB/s)"
awk -v a="$OFF" -v p="$PEER" -v o="$ON" -v q="$PEERON" \
  'BEGIN{printf "airlock reaches %.0f%% of the parallel openssl rate offline, %.0f%% of curl | openssl online (target 80%%)\n", 100*p/a, 100*q/o}'
