#!/usr/bin/env bash
# Scrape benchmark: how many /metrics (and /status.json) answers per second `airlock serve`
# gives for a site of PACKAGES packages, next to nginx serving the same bytes as a static
# file: the cost of building the status per request once the data folder is read (it is read
# again only when something is published).
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/metrics.sh [PACKAGES] [CLIENTS] [SECONDS]
#   (default 5000 packages, 4 keep-alive clients, 10 s per run; AIRLOCK skips the release build)
#
# Prints answers per second for each, and airlock's /metrics rate over nginx's. The load
# generator is bench/scrape.rs (built with rustc -O). Needs: nginx rustc curl dpkg-deb.
set -euo pipefail
PACKAGES=${1:-5000}
CLIENTS=${2:-4}
SECONDS_PER_RUN=${3:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup metrics "apt-get install nginx-light rustc curl dpkg" nginx rustc curl dpkg-deb
rustc -O --edition 2024 "$ROOT/bench/scrape.rs" -o scrape

"$AIRLOCK" --quiet init site >/dev/null
printf '[site]\ndata_dir = "data"\nlisten = "127.0.0.1:0"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\nvalid_for = "7d"\n' > site/airlock.toml
echo "building $PACKAGES packages" >&2
mkdir debs
for i in $(seq "$PACKAGES"); do
  mkdir -p pkg/DEBIAN
  printf 'Package: pkg%s\nVersion: 1\nArchitecture: amd64\nMaintainer: B <b@example.invalid>\nDescription: package %s\n' "$i" "$i" > pkg/DEBIAN/control
  dpkg-deb --root-owner-group -Znone --build pkg "debs/pkg${i}.deb" >/dev/null
  rm -rf pkg
done
"$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main debs >/dev/null
"$AIRLOCK" --quiet --config site/airlock.toml publish >/dev/null
"$AIRLOCK" --quiet --config site/airlock.toml verify --offline >/dev/null

AIRLOCK_PORT=$(free_port)
"$AIRLOCK" --quiet --config site/airlock.toml serve --listen "127.0.0.1:$AIRLOCK_PORT" 2>/dev/null &
PIDS+=($!)
wait_for "http://127.0.0.1:$AIRLOCK_PORT/metrics"
# The first answer reads the data folder; every later one is built from what it read.
mkdir static
curl -fsS "http://127.0.0.1:$AIRLOCK_PORT/metrics" -o static/metrics
grep -q "airlock_apt_packages{.*} $PACKAGES" static/metrics || { echo "/metrics does not count $PACKAGES packages" >&2; exit 1; }
NGINX_PORT=$(free_port)
start_nginx "$WORK/static" "$NGINX_PORT"
PIDS+=("$NGINX_PID")
wait_for "http://127.0.0.1:$NGINX_PORT/metrics"

rate() { read -r per_second failures < <(./scrape "127.0.0.1:$1" "$2" "$CLIENTS" "$SECONDS_PER_RUN"); [ "$failures" = 0 ] || echo "$failures failures on $2" >&2; echo "$per_second"; }
METRICS=$(rate "$AIRLOCK_PORT" /metrics)
STATUS=$(rate "$AIRLOCK_PORT" /status.json)
STATIC=$(rate "$NGINX_PORT" /metrics)
printf '%s packages, %s clients, %s s each; /metrics is %s bytes\n' "$PACKAGES" "$CLIENTS" "$SECONDS_PER_RUN" "$(stat -c %s static/metrics)"
printf '%-28s %10s answers/s\n' "airlock /metrics" "$METRICS" "airlock /status.json" "$STATUS" "nginx, the same bytes" "$STATIC"
awk -v a="$METRICS" -v n="$STATIC" 'BEGIN{printf "airlock /metrics over nginx static: %.2f\n", a/n}'
