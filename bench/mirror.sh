#!/usr/bin/env bash
# Mirror benchmark: `airlock sync` against reprepro `update`, aptly `mirror update` and
# debmirror, on the same upstream served by nginx (keep-alive) on 127.0.0.1.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] [PEERS="reprepro aptly debmirror"] bench/mirror.sh [COUNT] [ROUNDS]
#   (default 2000 packages, 3 rounds; PEERS: the peers to run, e.g. PEERS=aptly; MIRROR_ONLY=1:
#   part 1 alone)
#
# Part 1: an upstream of COUNT small packages (dpkg-deb, apt-ftparchive, gpg ed25519),
# mirrored whole by each tool, then mirrored again with nothing changed (no-op re-sync).
# Part 2: index ingest: an upstream whose main/binary-amd64 index is Debian bookworm's real
# 63,000-package Packages (from this machine's apt lists), with a filter that selects nothing;
# it times fetching, checking and parsing the index. Part 3: the same index with a server's
# selection (13 packages and what apt would install with them, about 180; each stanza's
# Size/MD5sum/SHA256 rewritten to describe one small pool file hard-linked at every path): the
# ingest, the closure and the downloads, by airlock alone. Medians of ROUNDS fresh runs.
# Needs: reprepro aptly debmirror nginx apt-utils gpg lz4 time.
set -euo pipefail
COUNT=${1:-2000}
ROUNDS=${2:-3}
PEERS=${PEERS:-reprepro aptly debmirror}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup mirror "apt-get install reprepro aptly debmirror nginx-light apt-utils gpg lz4 time" reprepro aptly debmirror nginx apt-ftparchive gpg lz4 /usr/bin/time
export GNUPGHOME="$WORK/gnupg"; mkdir -m 700 "$GNUPGHOME"

gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench Upstream <up@example.invalid>' ed25519 sign never 2>/dev/null
KEY=$(gpg --list-secret-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
gpg --export "$KEY" > upstream.gpg

# sign_suite DIR: Release, InRelease and Release.gpg for dists/stable of upstream DIR.
sign_suite() {
  local dists="$1/dists/stable" release
  release=$(mktemp)
  (cd "$1" && apt-ftparchive -o APT::FTPArchive::Release::Origin=Bench -o APT::FTPArchive::Release::Suite=stable \
     -o APT::FTPArchive::Release::Codename=stable -o APT::FTPArchive::Release::Architectures=amd64 \
     -o APT::FTPArchive::Release::Components=main -o APT::FTPArchive::DoByHash=true release dists/stable > "$release")
  mv "$release" "$dists/Release"
  gpg --batch --yes --clearsign -o "$dists/InRelease" "$dists/Release"
  gpg --batch --yes -abs -o "$dists/Release.gpg" "$dists/Release"
}

echo "building an upstream of $COUNT packages..."
mkdir -p up/pool/main up/dists/stable/main/binary-amd64 src
export WORK
seq 1 "$COUNT" | xargs -P "$(nproc)" -I{} bash -c 'small_deb up-pkg{} 1.0-{} "$WORK/up/pool/main/up-pkg{}_1.0-{}_amd64.deb"'
(cd up && apt-ftparchive --arch amd64 packages pool/main > dists/stable/main/binary-amd64/Packages)
(cd up/dists/stable/main/binary-amd64 && xz -k -6 Packages && gzip -k -9 Packages)
sign_suite up

LISTS=$(ls /var/lib/apt/lists/*_dists_bookworm_main_binary-amd64_Packages* 2>/dev/null | head -1 || true)
[ -n "${MIRROR_ONLY:-}" ] && LISTS=
INGEST=no
if [ -n "$LISTS" ]; then
  echo "building the index-ingest upstream from Debian bookworm's Packages..."
  INGEST=yes
  mkdir -p big/dists/stable/main/binary-amd64
  # Sizes and digests of one synthetic pool file, linked at every Filename (part 3).
  printf 'a synthetic pool file\n' > big/blob
  BLOB_SHA=$(sha256sum big/blob | cut -d' ' -f1) BLOB_MD5=$(md5sum big/blob | cut -d' ' -f1)
  case "$LISTS" in *.lz4) lz4 -dc "$LISTS";; *) cat "$LISTS";; esac \
    | sed -e "s/^Size: .*/Size: $(stat -c %s big/blob)/" -e "s/^SHA256: .*/SHA256: $BLOB_SHA/" -e "s/^MD5sum: .*/MD5sum: $BLOB_MD5/" \
    > big/dists/stable/main/binary-amd64/Packages
  (cd big && awk '/^Filename: /{print $2}' dists/stable/main/binary-amd64/Packages \
    | perl -MFile::Path=make_path -MFile::Basename -nle 'make_path(dirname($_)); link("blob", $_) or -e $_ or die "$_: $!"')
  # Both compressions, as deb.debian.org and archive.ubuntu.com list them; each tool picks.
  (cd big/dists/stable/main/binary-amd64 && xz -k -T0 -6 Packages && gzip -k -9 Packages)
  sign_suite big
  BIG_COUNT=$(grep -c '^Package: ' big/dists/stable/main/binary-amd64/Packages)
fi

PORT=$(free_port)
start_nginx "$WORK" "$PORT"
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/up/dists/stable/InRelease" && break; sleep 0.05; done

timed() { # CMD...: wall seconds, peak RSS (KB) and user+sys CPU seconds into T, M and C
  /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.out" "$@" >"$WORK/last.log" 2>&1 || { echo "$* failed:"; tail -20 "$WORK/last.log"; exit 1; }
  local user sys
  read -r T M user sys < "$WORK/time.out"
  C=$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')
}
fastest() { # CMD...: fastest of 5 runs in seconds, into T
  local best=1e9 s e
  for _ in 1 2 3 4 5; do s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); best=$(awk -v b="$best" -v s="$s" -v e="$e" 'BEGIN{t=e-s; print (t<b)?t:b}'); done
  T=$best
}

# Each tool, in a fresh folder per round: sync (T, M), then no-op re-sync (N). UPSTREAM and
# FILTER pick part 1 (whole mirror), part 2 (ingest, nothing selected: FILTER=1) or part 3
# (ingest and a server's closure: FILTER=server).
run_reprepro() {
  mkdir -p rr/conf
  printf 'Codename: stable\nArchitectures: amd64\nComponents: main\nUpdate: up\nSignWith: %s\n' "$KEY" > rr/conf/distributions
  printf 'Name: up\nMethod: http://127.0.0.1:%s/%s\nSuite: stable\nComponents: main\nArchitectures: amd64\nVerifyRelease: %s\n%s' \
    "$PORT" "$UPSTREAM" "${KEY: -16}" "$([ -n "$FILTER" ] && echo 'FilterFormula: Package (== no-such-package)')" > rr/conf/updates
  timed reprepro -b rr update
  local t=$T m=$M
  fastest reprepro -b rr update; N=$T; T=$t; M=$m
}
run_aptly() {
  echo "{\"rootDir\": \"$PWD/aptly\", \"downloadConcurrency\": 8}" > aptly.conf
  local filter=(); [ -n "$FILTER" ] && filter=(-filter=no-such-package)
  aptly -config=aptly.conf mirror create -keyring="$WORK/upstream.gpg" -architectures=amd64 "${filter[@]}" up "http://127.0.0.1:$PORT/$UPSTREAM/" stable main >/dev/null
  timed aptly -config=aptly.conf mirror update -keyring="$WORK/upstream.gpg" up
  local t=$T m=$M
  fastest aptly -config=aptly.conf mirror update -keyring="$WORK/upstream.gpg" up; N=$T; T=$t; M=$m
}
run_debmirror() {
  local args=(--method=http --host="127.0.0.1:$PORT" --root="/$UPSTREAM" --dist=stable --section=main --arch=amd64
    --nosource --keyring="$WORK/upstream.gpg" --rsync-extra=none --diff=none --i18n dm)
  timed debmirror "${args[@]}"
  local t=$T m=$M
  fastest debmirror "${args[@]}"; N=$T; T=$t; M=$m
}
run_airlock() {
  "$AIRLOCK" --quiet init site >/dev/null
  printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n[[apt.mirror]]\nname = "up"\nurl = "http://127.0.0.1:%s/%s/"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\nkeyring = "%s"\n%s\n' \
    "$PORT" "$UPSTREAM" "$WORK/upstream.gpg" "$(case "$FILTER" in
      # A name that matches nothing stops a sync; a glob that matches nothing only warns.
      1) echo 'packages = ["no-such-package-*"]';;
      server) echo "packages = [$SERVER]";; esac)" > site/airlock.toml
  timed "$AIRLOCK" --quiet --config site/airlock.toml sync
  local t=$T m=$M
  fastest "$AIRLOCK" --quiet --config site/airlock.toml sync; N=$T; T=$t; M=$m
}

declare -A TIME RSS NOOP CPU TS MS NS CS
# Rounds alternate between the tools, so that a slow minute of the machine is shared.
bench() { # PART TOOLS...
  local part=$1 tool round; shift
  for round in $(seq "$ROUNDS"); do
    for tool in "$@"; do
      mkdir -p "$WORK/$part-$tool-$round" && cd "$WORK/$part-$tool-$round"
      sync
      "run_$tool"
      TS[$tool]+="$T " MS[$tool]+="$M " NS[$tool]+="$N " CS[$tool]+="$C "
      cd "$WORK"
    done
  done
  for tool in "$@"; do
    TIME[$part-$tool]=$(printf '%s\n' ${TS[$tool]} | median)
    RSS[$part-$tool]=$(printf '%s\n' ${MS[$tool]} | median)
    NOOP[$part-$tool]=$(printf '%s\n' ${NS[$tool]} | median)
    CPU[$part-$tool]=$(printf '%s\n' ${CS[$tool]} | median)
    echo "$part $tool: rounds ${TS[$tool]}s; user+sys ${CS[$tool]}s"
    TS[$tool]= MS[$tool]= NS[$tool]= CS[$tool]=
  done
}

UPSTREAM=up FILTER= bench mirror $PEERS airlock
# Every tool really mirrored every package.
for d in mirror-airlock-1/site/data/public/apt/up mirror-reprepro-1/rr mirror-debmirror-1/dm; do
  [ -d "$d" ] || continue
  n=$(find -L "$d/pool" -name '*.deb' | wc -l)
  [ "$n" = "$COUNT" ] || { echo "$d holds $n packages, expected $COUNT" >&2; exit 1; }
done
if [ "$INGEST" = yes ]; then
  UPSTREAM=big FILTER=1 bench ingest $(printf '%s\n' $PEERS | grep -v debmirror) airlock
  SERVER='"openssh-server", "nginx", "postgresql", "squid", "python3-django", "chrony", "rsyslog", "sudo", "curl", "vim-tiny", "less", "bind9", "default-mta"'
  UPSTREAM=big FILTER=server bench closure airlock
  CLOSURE_COUNT=$(grep -c '^Package: ' closure-airlock-1/site/data/public/apt/up/dists/stable/main/binary-amd64/Packages)
fi

echo
echo "$(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); reprepro $(reprepro --version 2>&1 | awk '{print $NF; exit}'), aptly $(aptly version | awk '{print $NF}'), debmirror $(dpkg-query -W -f='${Version}' debmirror), airlock $("$AIRLOCK" --version | awk '{print $NF}')"
echo "mirror of $COUNT packages from nginx on loopback (median of $ROUNDS; cpu: the tool's user+sys):"
printf '  %-10s %10s %10s %10s %14s\n' tool sync cpu "peak RSS" "no-op re-sync"
for t in $PEERS airlock; do
  printf '  %-10s %9.2fs %9.2fs %7d MB %13.3fs\n' "$t" "${TIME[mirror-$t]}" "${CPU[mirror-$t]}" $(( RSS[mirror-$t] / 1024 )) "${NOOP[mirror-$t]}"
done
fastest_peer=$(for t in $PEERS; do echo "${TIME[mirror-$t]} $t"; done | sort -g | head -1 | cut -d' ' -f2)
bestnoop=$(for t in $PEERS; do echo "${NOOP[mirror-$t]}"; done | sort -g | head -1)
awk -v b="${TIME[mirror-$fastest_peer]}" -v a="${TIME[mirror-airlock]}" -v bc="${CPU[mirror-$fastest_peer]}" -v ac="${CPU[mirror-airlock]}" \
    -v p="$fastest_peer" -v bn="$bestnoop" -v an="${NOOP[mirror-airlock]}" \
  'BEGIN{printf "  airlock: %.1fx faster than the fastest peer, %s (target 3x), %.1fx less cpu; no-op %.0f ms, %.1fx faster (target under 50 ms)\n", b/a, p, bc/ac, an*1000, bn/an}'
if [ "$INGEST" = yes ]; then
  echo "index ingest: Debian bookworm main/binary-amd64, $BIG_COUNT packages, nothing selected:"
  printf '  %-10s %10s %10s %10s\n' tool time cpu "peak RSS"
  for t in $(printf '%s\n' $PEERS | grep -v debmirror) airlock; do
    printf '  %-10s %9.2fs %9.2fs %7d MB\n' "$t" "${TIME[ingest-$t]}" "${CPU[ingest-$t]}" $(( RSS[ingest-$t] / 1024 ))
  done
  printf '  %-10s %9.2fs %9.2fs %7d MB   (with a server'"'"'s closure: 13 packages named, %s mirrored)\n' airlock "${TIME[closure-airlock]}" "${CPU[closure-airlock]}" $(( RSS[closure-airlock] / 1024 )) "$CLOSURE_COUNT"
fi
