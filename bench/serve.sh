#!/usr/bin/env bash
# File responder benchmark: `airlock serve` against nginx on the same published tree.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/serve.sh [SECONDS] [LARGE_MB] [ROUNDS]
#   (default 10 s of load per run, a 512 MB file, 3 rounds)
#
# Small files: wrk, 2 threads, 50 keep-alive connections, on a 2 KiB published file (what
# InRelease-sized requests cost); for airlock also under an upstream name (Host:
# archive.ubuntu.com routed to the tree: the transparent-proxy path). Large files: curl
# downloads of a LARGE_MB pool file, best of 3. Both servers run on 127.0.0.1 only, side by
# side with the same data (runs alternate); nginx gets 2 workers and sendfile.
# Needs: nginx wrk curl (apt-get install nginx-light wrk curl).
set -euo pipefail
SECONDS_OF_LOAD=${1:-10}
LARGE_MB=${2:-512}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup serve "apt-get install nginx-light wrk curl" nginx wrk curl

# A repo holding one small and one large package, published.
"$AIRLOCK" --quiet init site >/dev/null
printf '[site]\ndata_dir = "data"\nlisten = "127.0.0.1:0"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n\n[[proxy.route]]\nhost = "archive.ubuntu.com"\npath = "/ubuntu"\nto = "apt/bench"\n' > site/airlock.toml
mkdir -p pkg/small/DEBIAN pkg/large/DEBIAN pkg/large/usr/share/bench
printf 'Package: small\nVersion: 1\nArchitecture: amd64\nMaintainer: B <b@example.invalid>\nDescription: small\n' > pkg/small/DEBIAN/control
printf 'Package: large\nVersion: 1\nArchitecture: amd64\nMaintainer: B <b@example.invalid>\nDescription: large\n' > pkg/large/DEBIAN/control
head -c $((LARGE_MB * 1024 * 1024)) /dev/urandom > pkg/large/usr/share/bench/blob
mkdir debs
dpkg-deb --root-owner-group -Znone --build pkg/small debs/small.deb >/dev/null
dpkg-deb --root-owner-group -Znone --build pkg/large debs/large.deb >/dev/null
rm -rf pkg
"$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main debs >/dev/null
"$AIRLOCK" --quiet --config site/airlock.toml publish >/dev/null
PUBLIC="$WORK/site/data/public"
# A 2 KiB file in the tree, like an InRelease.
head -c 2048 /dev/urandom > "$(readlink -f "$PUBLIC/apt/bench")/dists/stable/small.bin"
SMALL=/apt/bench/dists/stable/small.bin
# Write back the large file now, not during the first measurement.
sync
LARGE=/apt/bench/pool/main/l/large/large_1_amd64.deb


# Both servers run side by side (idle until asked); the small-file runs alternate between them
# for ROUNDS rounds and medians are kept, so that a slow minute of the machine does not
# count against one of them only.
AIRLOCK_PORT=$(free_port)
"$AIRLOCK" --quiet --config site/airlock.toml serve --listen "127.0.0.1:$AIRLOCK_PORT" 2>/dev/null &
PIDS+=($!)
NGINX_PORT=$(free_port)
start_nginx "$PUBLIC" "$NGINX_PORT"
PIDS+=("$NGINX_PID")
PIDS+=($!)
AIRLOCK_URL="http://127.0.0.1:$AIRLOCK_PORT" NGINX_URL="http://127.0.0.1:$NGINX_PORT"
wait_for "$AIRLOCK_URL$SMALL"; wait_for "$NGINX_URL$SMALL"

reqs() { wrk -t2 -c50 -d"${SECONDS_OF_LOAD}s" "$@" | awk '/Requests\/sec/{print $2}'; }
for round in $(seq "$ROUNDS"); do
  a=$(reqs "$AIRLOCK_URL$SMALL")
  r=$(reqs -H 'Host: archive.ubuntu.com' "$AIRLOCK_URL/ubuntu/dists/stable/small.bin")
  n=$(reqs "$NGINX_URL$SMALL")
  echo "round $round: airlock $a, airlock under an upstream name $r, nginx $n req/s"
  echo "$a" >> airlock.reqs; echo "$r" >> routed.reqs; echo "$n" >> nginx.reqs
done
AIRLOCK_REQS=$(median < airlock.reqs) ROUTED_REQS=$(median < routed.reqs) NGINX_REQS=$(median < nginx.reqs)

gbps() { # best of 3 downloads of the large file
  local best=0 bps
  for _ in 1 2 3; do
    bps=$(curl -fs -o /dev/null -w '%{speed_download}' "$1$LARGE")
    best=$(awk -v a="$best" -v b="$bps" 'BEGIN{print (b>a)?b:a}')
  done
  awk -v b="$best" 'BEGIN{printf "%.2f", b/1e9}'
}
AIRLOCK_GBPS=$(gbps "$AIRLOCK_URL") NGINX_GBPS=$(gbps "$NGINX_URL")

echo
echo "$(nproc) cores, $(uname -r), nginx $(nginx -v 2>&1 | awk -F/ '{print $2}'), load and server on the same cores"
echo "medians of $ROUNDS rounds on a 2 KiB file: airlock $AIRLOCK_REQS, under an upstream name $ROUTED_REQS, nginx $NGINX_REQS req/s"
echo "$LARGE_MB MB file, best of 3: airlock $AIRLOCK_GBPS GB/s, nginx $NGINX_GBPS GB/s"
awk -v a="$AIRLOCK_REQS" -v n="$NGINX_REQS" 'BEGIN{printf "small files: airlock %.0f%% of nginx requests/s\n", 100*a/n}'
awk -v a="$ROUTED_REQS" -v n="$NGINX_REQS" 'BEGIN{printf "small files under an upstream name: airlock %.0f%% of nginx requests/s\n", 100*a/n}'
awk -v a="$AIRLOCK_GBPS" -v n="$NGINX_GBPS" 'BEGIN{printf "large file: airlock %.0f%% of nginx throughput\n", 100*a/n}'
