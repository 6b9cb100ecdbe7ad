#!/usr/bin/env bash
# Publish-to-bucket benchmark: airlock `publish` (which pushes) against aptly `publish` to an S3
# endpoint, both into one Garage (one node, on loopback), a fresh bucket each round.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] [GARAGE=BINARY] bench/push.sh [COUNT] [ROUNDS]   (default 2000 packages, 3 rounds)
#
# Each tool adds COUNT small .debs (dpkg-deb) to a local repo (aptly `repo add`, airlock `apt
# include`: local work, not timed), then publishes it signed (ed25519) to the bucket: aptly
# `publish repo -acquire-by-hash ... s3:bench:`, airlock `publish`, which pushes
# by itself when [storage] is a bucket (timed). Then one package gets a new version and each publishes again (aptly `publish
# update`, airlock `publish`): the daily case. Requests are what Garage itself logs
# receiving (one log line per S3 request, garage_api_common at info), counted over the timed
# commands only; CPU is the tool's user+sys time. After the last round both results are read
# back: aptly's InRelease from the bucket, airlock's through a frontend (`airlock serve` with
# no data folder) — each must verify with its key and list COUNT packages with the new version.
# A third tool, airlock-keep0, is airlock with `keep_pushed = "0"`: the writer keeps no package
# on its own disk after the push (the time includes dropping them); the data folders' sizes are
# printed beside each other.
# Needs: aptly gpg gpgv dpkg-dev curl time, garage (see .ci/run).
set -euo pipefail
COUNT=${1:-2000}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup push "apt-get install aptly gpg gpgv dpkg-dev curl time" aptly gpg gpgv dpkg-deb curl /usr/bin/time
export GNUPGHOME="$WORK/gnupg"; mkdir -m 700 "$GNUPGHOME"
start_garage

echo "generating $COUNT packages with dpkg-deb..."
mkdir -p debs new src
export WORK
seq 1 "$COUNT" | xargs -P "$(nproc)" -I{} bash -c 'small_deb bench-pkg{} 1.0 "$WORK/debs/bench-pkg{}_1.0_amd64.deb"'
small_deb bench-pkg1 2.0 "$WORK/new/bench-pkg1_2.0_amd64.deb"   # the one package changed before the second publish

gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench <bench@example.invalid>' ed25519 sign never 2>/dev/null
KEY=$(gpg --list-secret-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
gpg --export "$KEY" > aptly.gpg

# timed CMD...: runs CMD; its wall and user+sys seconds are added to T and C, the S3 requests
# Garage received meanwhile to R, and their methods noted in METHODS.
timed() {
  local before
  before=$(s3_requests)
  /usr/bin/time -f '%e %U %S' -o "$WORK/time.out" "$@" >"$WORK/last.log" 2>&1 || { echo "$* failed:"; tail -20 "$WORK/last.log"; exit 1; }
  read -r wall user sys < "$WORK/time.out"
  T=$(awk -v a="$T" -v b="$wall" 'BEGIN{print a+b}')
  C=$(awk -v a="$C" -v u="$user" -v s="$sys" 'BEGIN{print a+u+s}')
  R=$(( R + $(s3_requests) - before ))
  METHODS="$METHODS${METHODS:+; }$(s3_methods "$before")"
}

round_aptly() { # BUCKET
  cat > aptly.conf <<CONF
{"rootDir": "$PWD/aptly", "gpgProvider": "gpg2",
 "S3PublishEndpoints": {"bench": {"region": "$S3_REGION", "bucket": "$1", "endpoint": "$S3_ENDPOINT",
   "awsAccessKeyID": "$AWS_ACCESS_KEY_ID", "awsSecretAccessKey": "$AWS_SECRET_ACCESS_KEY", "acl": "none"}}}
CONF
  aptly -config=aptly.conf repo create -distribution=stable -component=main bench >/dev/null
  aptly -config=aptly.conf repo add bench "$WORK/debs/" >/dev/null 2>&1
  T=0 C=0 R=0 METHODS=
  timed aptly -config=aptly.conf publish repo -architectures=amd64 -acquire-by-hash -gpg-key="$KEY" -batch bench s3:bench:
  FIRST="$T $C $R" FIRST_METHODS=$METHODS
  aptly -config=aptly.conf repo remove bench 'bench-pkg1 (= 1.0)' >/dev/null 2>&1
  aptly -config=aptly.conf repo add bench "$WORK/new/" >/dev/null 2>&1
  T=0 C=0 R=0 METHODS=
  timed aptly -config=aptly.conf publish update -gpg-key="$KEY" -batch stable s3:bench:
  SECOND="$T $C $R" SECOND_METHODS=$METHODS
}
round_airlock() { # BUCKET
  "$AIRLOCK" --quiet init site >/dev/null
  printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n\n[storage]\nkind = "s3"\nendpoint = "%s"\nbucket = "%s"\nregion = "%s"\n%s' \
    "$S3_ENDPOINT" "$1" "$S3_REGION" "${KEEP:-}" > site/airlock.toml
  "$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main "$WORK/debs" >/dev/null
  T=0 C=0 R=0 METHODS=
  timed "$AIRLOCK" --quiet --config site/airlock.toml publish
  FIRST="$T $C $R" FIRST_METHODS=$METHODS
  # keep_versions is 1 (the default): the new version replaces the old.
  "$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main "$WORK/new" >/dev/null
  T=0 C=0 R=0 METHODS=
  timed "$AIRLOCK" --quiet --config site/airlock.toml publish
  SECOND="$T $C $R" SECOND_METHODS=$METHODS
  DATA_KB[$2]=$(du -sk site/data | cut -f1)
}
round_airlock-keep0() { # BUCKET
  KEEP=$'keep_pushed = "0"\n' round_airlock "$1" airlock-keep0
}

# Rounds alternate between the tools, so that a slow minute of the machine is shared.
declare -A RESULTS DATA_KB
TOOLS="aptly airlock airlock-keep0"
for round in $(seq "$ROUNDS"); do
  for tool in $TOOLS; do
    bucket="$tool-$round"
    garage_bucket "$bucket"
    mkdir -p "$WORK/$bucket" && cd "$WORK/$bucket"
    sync
    "round_$tool" "$bucket" "$tool"
    RESULTS[$tool-first]+="$FIRST"$'\n' RESULTS[$tool-second]+="$SECOND"$'\n'
    read -r t c r <<<"$FIRST"; echo "round $round $tool: first publish $t s, cpu $c s, $r requests ($FIRST_METHODS)"
    read -r t c r <<<"$SECOND"; echo "round $round $tool: one package changed $t s, cpu $c s, $r requests ($SECOND_METHODS)"
    cd "$WORK"
  done
done

# packages_of INDEX_FILE: the number of stanzas, and bench-pkg1's version.
packages_of() { echo "$(grep -c '^Package: ' "$1") $(awk '/^Package: bench-pkg1$/{p=1} p&&/^Version: /{print $2; exit}' "$1")"; }
expect() { # WHAT "COUNT VERSION"
  [ "$2" = "$COUNT 2.0" ] || { echo "$1 lists $2 (packages, bench-pkg1's version), expected $COUNT 2.0" >&2; exit 1; }
}
# expect_deb WHAT FILE: FILE is bench-pkg1's .deb at version 2.0. (A check of its own: under
# set -e a failed download in `get && check` would pass unnoticed.)
expect_deb() {
  [ "$(dpkg-deb -f "$2" Package Version 2>/dev/null | tr '\n' ' ')" = "Package: bench-pkg1 Version: 2.0 " ] \
    || { echo "$1 did not serve bench-pkg1 2.0's .deb" >&2; exit 1; }
}

# aptly's publish, read back from its bucket.
last="aptly-$ROUNDS"
s3_get "$last" dists/stable/InRelease -o aptly.InRelease
gpgv --keyring "$WORK/aptly.gpg" aptly.InRelease 2>/dev/null || { echo "aptly's InRelease in the bucket does not verify" >&2; exit 1; }
s3_get "$last" dists/stable/main/binary-amd64/Packages.gz | gzip -dc > aptly.Packages
grep -q "$(sha256sum aptly.Packages | cut -d' ' -f1)" aptly.InRelease || { echo "aptly's Packages is not the one its InRelease names" >&2; exit 1; }
expect "aptly's bucket" "$(packages_of aptly.Packages)"
deb=$(awk '/^Filename: .*bench-pkg1_2.0/{print $2}' aptly.Packages)
s3_get "$last" "$deb" -o aptly.deb || { echo "aptly's bucket has no $deb" >&2; exit 1; }
expect_deb "aptly's bucket" aptly.deb

# airlock's pushes (keeping all, keeping nothing), each read back through a frontend (a
# config and no data folder).
read_back_airlock() { # TOOL
  local last="$1-$ROUNDS" front="front-$1" port
  mkdir "$front"
  printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n[storage]\nkind = "s3"\nendpoint = "%s"\nbucket = "%s"\nregion = "%s"\n' \
    "$S3_ENDPOINT" "$last" "$S3_REGION" > "$front/airlock.toml"
  port=$(free_port)
  "$AIRLOCK" --quiet --config "$front/airlock.toml" serve --listen "127.0.0.1:$port" 2>"$front.log" &
  PIDS+=($!)
  local url="http://127.0.0.1:$port"
  wait_for "$url/apt/bench/dists/stable/InRelease"
  curl -fsS -o "$front.gpg" "$url/airlock.gpg"
  curl -fsS -o "$front.InRelease" "$url/apt/bench/dists/stable/InRelease"
  gpgv --keyring "$WORK/$front.gpg" "$front.InRelease" 2>/dev/null || { echo "$1's InRelease from the frontend does not verify" >&2; exit 1; }
  cmp -s "$front.gpg" "$last/site/airlock.gpg" || { echo "the frontend's airlock.gpg is not $1's writer's" >&2; exit 1; }
  curl -fsS "$url/apt/bench/dists/stable/main/binary-amd64/Packages" -o "$front.Packages"
  grep -q "$(sha256sum "$front.Packages" | cut -d' ' -f1)" "$front.InRelease" || { echo "$1's Packages is not the one its InRelease names" >&2; exit 1; }
  expect "$1's frontend" "$(packages_of "$front.Packages")"
  deb=$(awk '/^Filename: .*bench-pkg1_2.0/{print $2}' "$front.Packages")
  curl -fsS -o "$front.deb" "$url/apt/bench/$deb" || { echo "$1's frontend does not serve $deb" >&2; exit 1; }
  expect_deb "$1's frontend" "$front.deb"
}
read_back_airlock airlock
read_back_airlock airlock-keep0
echo "read back: aptly's, airlock's and airlock-keep0's InRelease files verify, each lists $COUNT packages with bench-pkg1 2.0, and serves its .deb"

median_of() { printf '%s' "${RESULTS[$1]}" | awk -v f="$2" 'NF{print $f}' | median; }
echo
echo "$(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); aptly $(aptly version | awk '{print $NF}'), $("$GARAGE" --version | awk '{print $1, $2}'), airlock $("$AIRLOCK" --version | awk '{print $NF}')"
echo "publish of $COUNT packages to Garage on loopback (median of $ROUNDS; requests: S3 requests Garage received):"
printf '  %-46s %9s %9s %9s\n' "" wall "cpu" requests
for phase in first second; do
  label=$([ $phase = first ] && echo "first publish, empty bucket" || echo "one package changed")
  for tool in $TOOLS; do
    printf '  %-46s %8.2fs %8.2fs %9d\n' "$tool: $label" "$(median_of "$tool-$phase" 1)" "$(median_of "$tool-$phase" 2)" "$(median_of "$tool-$phase" 3)"
  done
  for tool in airlock airlock-keep0; do
    awk -v at="$(median_of "aptly-$phase" 1)" -v lt="$(median_of "$tool-$phase" 1)" \
        -v ac="$(median_of "aptly-$phase" 2)" -v lc="$(median_of "$tool-$phase" 2)" \
        -v ar="$(median_of "aptly-$phase" 3)" -v lr="$(median_of "$tool-$phase" 3)" -v l="$label" -v t="$tool" \
      'BEGIN{printf "  %s: %s %.1fx faster (wall), %.1fx less cpu, %.1fx fewer requests than aptly\n", l, t, at/lt, ac/lc, ar/lr}'
  done
done
echo "  the writer's data folder after the last round: airlock $((DATA_KB[airlock] / 1024)) MiB, airlock-keep0 $((DATA_KB[airlock-keep0] / 1024)) MiB"
