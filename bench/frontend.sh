#!/usr/bin/env bash
# Frontend benchmark: `airlock serve` from a bucket (a frontend: no data folder, the site
# pushed to Garage on loopback) against `airlock serve` of the writer's data folder, on the
# same published repo.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] [GARAGE=BINARY] [SMALL_KB=20] bench/frontend.sh [COUNT] [LARGE_MB] [ROUNDS] [SECONDS]
#   (default 2000 small packages, one of 200 MB, 3 rounds, 10 s of load)
#
# The repo holds COUNT small .debs (SMALL_KB of random bytes each: 2,000 of 20 KB fit the
# frontend's 64 MiB memory cache) and one of LARGE_MB (uncompressed random bytes). Each round
# starts the frontend afresh (nothing in memory) and fetches, with curl --parallel (16
# HTTP/1.1 keep-alive connections), every small .deb once: "cold", the frontend reads each
# from the bucket; then all of them again: "cached", from its memory; then the same from the
# local server. Then the large file, downloaded whole by one curl: from a fresh frontend (its
# disk cache emptied), again (now from its disk cache), from the local server, and straight
# from Garage (a signed GET). After the rounds:
# wrk (2 threads, 16 keep-alive connections, SECONDS) cycling over the small .debs, on the
# filled frontend and on the local server. S3 requests are what Garage logs receiving during
# each pass. Medians of ROUNDS.
# Needs: wrk curl dpkg-dev, garage (see .ci/run).
set -euo pipefail
COUNT=${1:-2000}
LARGE_MB=${2:-200}
ROUNDS=${3:-3}
SECONDS_OF_LOAD=${4:-10}
SMALL_KB=${SMALL_KB:-20}
SMALL_KB=$((SMALL_KB * 1000))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup frontend "apt-get install wrk curl dpkg-dev" wrk curl dpkg-deb
start_garage
garage_bucket frontend

echo "generating $COUNT small packages and one of $LARGE_MB MB..."
mkdir -p debs src
make_deb() { # INDEX SIZE_BYTES COMPRESSION
  local d="$WORK/src/p$1"
  mkdir -p "$d/DEBIAN" "$d/usr/share/bench"
  head -c "$2" /dev/urandom > "$d/usr/share/bench/data"
  printf 'Package: bench%s\nVersion: 1\nArchitecture: amd64\nMaintainer: Bench <bench@example.invalid>\nDescription: bench\n' "$1" > "$d/DEBIAN/control"
  dpkg-deb --root-owner-group "-Z$3" --build "$d" "$WORK/debs/bench$1.deb" >/dev/null
  rm -rf "$d"
}
export -f make_deb; export WORK
# gzip: the random content stays 20 KB, tar's zero padding goes.
seq 1 "$COUNT" | xargs -P "$(nproc)" -I{} bash -c "make_deb {} $SMALL_KB gzip"
make_deb large $((LARGE_MB * 1024 * 1024)) none

"$AIRLOCK" --quiet init site >/dev/null
STORAGE=$(printf '[storage]\nkind = "s3"\nendpoint = "%s"\nbucket = "frontend"\nregion = "%s"\n# No new push comes: no polls during the passes.\npoll = "1h"\ncache_dir = "%s"\ncache_size = "4GB"\n' "$S3_ENDPOINT" "$S3_REGION" "$WORK/front-cache")
printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n\n%s\n' "$STORAGE" > site/airlock.toml
"$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main debs >/dev/null
"$AIRLOCK" --quiet --config site/airlock.toml publish
"$AIRLOCK" --quiet --config site/airlock.toml push
rm -rf debs
PACKAGES=site/data/public/apt/bench/dists/stable/main/binary-amd64/Packages
awk '/^Filename: .*\/bench[0-9]+_1_amd64\.deb$/{print "/apt/bench/" $2}' "$PACKAGES" > small.paths
LARGE=/apt/bench/$(awk '/^Filename: .*\/benchlarge_1_amd64\.deb$/{print $2}' "$PACKAGES")
LARGE_SIZE=$(awk '/^Package: benchlarge$/{p=1} p&&/^Size: /{print $2; exit}' "$PACKAGES")
LARGE_SHA=$(awk '/^Package: benchlarge$/{p=1} p&&/^SHA256: /{print $2; exit}' "$PACKAGES")
[ "$(wc -l < small.paths)" = "$COUNT" ] || { echo "the index lists $(wc -l < small.paths) small packages, expected $COUNT" >&2; exit 1; }
SMALL_BYTES=$(awk '/^Package: bench[0-9]/{p=1} p&&/^Size: /{s+=$2; p=0} END{print s}' "$PACKAGES")
sync

LOCAL_PORT=$(free_port)
"$AIRLOCK" --quiet --config site/airlock.toml serve --listen "127.0.0.1:$LOCAL_PORT" 2>/dev/null &
PIDS+=($!)
LOCAL="http://127.0.0.1:$LOCAL_PORT"
mkdir front
printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n%s\n' "$STORAGE" > front/airlock.toml
FRONT_PORT=$(free_port) FRONT="http://127.0.0.1:$FRONT_PORT" FRONT_PID=
start_frontend() { # a fresh frontend process: nothing in memory, nothing in its disk cache
  [ -n "$FRONT_PID" ] && { kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true; }
  rm -rf "$WORK/front-cache"
  "$AIRLOCK" --quiet --config front/airlock.toml serve --listen "127.0.0.1:$FRONT_PORT" 2>>front.log &
  FRONT_PID=$!
  PIDS+=("$FRONT_PID")
  wait_for "$FRONT/apt/bench/dists/stable/InRelease"
}

# small_pass BASE: every small .deb once, 16 keep-alive connections; requests/s into T, the
# S3 requests Garage received meanwhile into R, connections opened into CONNECTS. Stops unless all are 200 with the index's sizes.
small_pass() {
  local before start end
  awk -v b="$1" '{print "url = \"" b $0 "\"\noutput = \"/dev/null\""}' small.paths > pass.curl
  before=$(s3_requests)
  start=$(date +%s.%N)
  curl -sS --no-progress-meter --parallel --parallel-max 16 -K pass.curl -w '%{http_code} %{size_download} %{num_connects}\n' > pass.out
  end=$(date +%s.%N)
  R=$(( $(s3_requests) - before ))
  T=$(awk -v s="$start" -v e="$end" -v n="$COUNT" 'BEGIN{print n/(e-s)}')
  read -r ok bytes connects < <(awk '$1==200{n++} {b+=$2; c+=$3} END{print n+0, b+0, c+0}' pass.out)
  [ "$ok" = "$COUNT" ] && [ "$bytes" = "$SMALL_BYTES" ] || { echo "$1: $ok of $COUNT answers 200, $bytes of $SMALL_BYTES bytes" >&2; exit 1; }
  CONNECTS=$connects
}
# large_pass BASE|bucket: the large file whole, one curl (from the frontend or server at BASE,
# or straight from Garage); MB/s into T, S3 requests into R.
large_pass() {
  local before bps size
  before=$(s3_requests)
  if [ "$1" = bucket ]; then
    read -r bps size < <(s3_get frontend "blobs/sha256/${LARGE_SHA:0:2}/$LARGE_SHA" -o /dev/null -w '%{speed_download} %{size_download}\n')
  else
    read -r bps size < <(curl -fsS -o /dev/null -w '%{speed_download} %{size_download}\n' "$1$LARGE")
  fi
  R=$(( $(s3_requests) - before ))
  [ "$size" = "$LARGE_SIZE" ] || { echo "$1$LARGE: $size bytes, the index says $LARGE_SIZE" >&2; exit 1; }
  T=$(awk -v b="$bps" 'BEGIN{print b/1e6}')
}

declare -A RUNS
note() { RUNS[$1]+="$2 $3"$'\n'; LAST+="$1 $(printf '%.0f' "$2") ($3), "; } # KEY VALUE REQUESTS
for round in $(seq "$ROUNDS"); do
  start_frontend
  LAST=
  small_pass "$FRONT"; note small-cold "$T" "$R"; c1=$CONNECTS
  small_pass "$FRONT"; note small-cached "$T" "$R"
  small_pass "$LOCAL"; note small-local "$T" "$R"
  start_frontend
  large_pass "$FRONT"; note large-cold "$T" "$R"
  large_pass "$FRONT"; note large-again "$T" "$R"
  large_pass "$LOCAL"; note large-local "$T" "$R"
  large_pass bucket; note large-bucket "$T" "$R"
  echo "round $round: small req/s and large MB/s (S3 requests): $LAST$c1 connections in the first pass"
done

# Sustained load on the small .debs, from memory on the frontend and from disk locally.
cat > cycle.lua <<'LUA'
local paths = {}
for line in io.lines("small.paths") do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA
reqs() { wrk -t2 -c16 -d"${SECONDS_OF_LOAD}s" -s cycle.lua "$1" | awk '/Requests\/sec/{print $2} /Non-2xx/{print "non-2xx: " $0 > "/dev/stderr"; exit 1}'; }
small_pass "$FRONT"   # the fresh frontend of the last large pass, filled
before=$(s3_requests)
WRK_FRONT=$(reqs "$FRONT")
WRK_FRONT_R=$(( $(s3_requests) - before ))
WRK_LOCAL=$(reqs "$LOCAL")

med() { printf '%s' "${RUNS[$1]}" | awk -v f="$2" 'NF{print $f}' | median; }
echo
echo "$(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); $("$GARAGE" --version | awk '{print $1, $2}'), airlock $("$AIRLOCK" --version | awk '{print $NF}'); clients, servers and Garage on the same cores"
echo "$COUNT small .debs ($((SMALL_BYTES / COUNT)) bytes each), each fetched once, curl --parallel over 16 keep-alive connections (median of $ROUNDS):"
printf '  %-40s %10s %10s %12s\n' "" "req/s" "MB/s" "S3 requests"
for k in small-cold small-cached small-local; do
  label=$(case $k in small-cold) echo "frontend, cold (first fetch: bucket)";; small-cached) echo "frontend, cached (second fetch)";; *) echo "local airlock serve";; esac)
  printf '  %-40s %10.0f %10.1f %12d\n' "$label" "$(med "$k" 1)" "$(awk -v r="$(med "$k" 1)" -v b="$SMALL_BYTES" -v n="$COUNT" 'BEGIN{print r*b/n/1e6}')" "$(med "$k" 2)"
done
echo "wrk, 2 threads, 16 connections, ${SECONDS_OF_LOAD} s over the same files: frontend (cached) $WRK_FRONT req/s ($WRK_FRONT_R S3 requests), local $WRK_LOCAL req/s"
echo "the $LARGE_MB MB package, one download (median of $ROUNDS):"
printf '  %-40s %10s %12s\n' "" "MB/s" "S3 requests"
for k in large-cold large-again large-local large-bucket; do
  label=$(case $k in large-cold) echo "frontend, first download";; large-again) echo "frontend, second download";;
    large-local) echo "local airlock serve";; *) echo "Garage itself (signed GET of the blob)";; esac)
  printf '  %-40s %10.0f %12d\n' "$label" "$(med "$k" 1)" "$(med "$k" 2)"
done
awk -v c="$(med small-cold 1)" -v k="$(med small-cached 1)" -v l="$(med small-local 1)" -v w="$WRK_FRONT" -v wl="$WRK_LOCAL" \
    -v lc="$(med large-cold 1)" -v la="$(med large-again 1)" -v ll="$(med large-local 1)" 'BEGIN{
  printf "small .debs: frontend cold %.0f%%, cached %.0f%% of local (wrk: %.0f%%)\n", 100*c/l, 100*k/l, 100*w/wl
  printf "large file: frontend first %.0f%%, second %.0f%% of local\n", 100*lc/ll, 100*la/ll }'
