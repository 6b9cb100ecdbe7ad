#!/usr/bin/env bash
# Local repository benchmark: airlock against reprepro and aptly on the same .deb files.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/local-repo.sh [COUNT] [ROUNDS]   (default 2000 packages, 3 rounds)
#
# Each tool adds COUNT small .debs (built by dpkg-deb) to one suite and publishes it signed
# with an ed25519 key: reprepro `includedeb` (which exports), aptly `repo add` + `publish repo`
# (by-hash), airlock `apt include` + `publish`. Then each republishes with nothing changed.
# Every round starts from an empty repository; the median round is printed. Needs:
# reprepro aptly gpg dpkg-dev time (apt-get install them).
set -euo pipefail
COUNT=${1:-2000}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup local-repo "apt-get install reprepro aptly gpg gpgv dpkg-dev time" reprepro aptly gpg gpgv dpkg-deb /usr/bin/time
export GNUPGHOME="$WORK/gnupg"; mkdir -m 700 "$GNUPGHOME"

echo "generating $COUNT packages with dpkg-deb..."
mkdir -p debs src
make_deb() {
  local i=$1 d="$WORK/src/p$1"
  mkdir -p "$d/DEBIAN" "$d/usr/share/doc/bench-pkg$i"
  printf 'bench package %s\n' "$i" > "$d/usr/share/doc/bench-pkg$i/README"
  printf 'Package: bench-pkg%s\nVersion: 1.0-%s\nArchitecture: amd64\nMaintainer: Bench <bench@example.invalid>\nDepends: libc6 (>= 2.36)\nSection: misc\nPriority: optional\nDescription: benchmark package %s\n A small package for the local repository benchmark.\n' "$i" "$i" "$i" > "$d/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip --build "$d" "$WORK/debs/bench-pkg${i}_1.0-${i}_amd64.deb" >/dev/null
  rm -rf "$d"
}
export -f make_deb; export WORK
seq 1 "$COUNT" | xargs -P "$(nproc)" -I{} bash -c 'make_deb {}'

gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench <bench@example.invalid>' ed25519 sign never 2>/dev/null
KEY=$(gpg --list-secret-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')

# timed CMD...: runs CMD, adds its wall time to $ELAPSED and raises $PEAK (KB) to its max RSS.
timed() {
  /usr/bin/time -f '%e %M' -o "$WORK/time.out" "$@" >"$WORK/last.log" 2>&1 || { cat "$WORK/last.log"; exit 1; }
  read -r t m < "$WORK/time.out"
  ELAPSED=$(awk -v a="$ELAPSED" -v b="$t" 'BEGIN{print a+b}')
  PEAK=$(( m > PEAK ? m : PEAK ))
}
# noop CMD...: the fastest of 5 runs of a republish with nothing changed, in seconds.
noop() {
  local best=1e9 start end
  for _ in 1 2 3 4 5; do
    start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N)
    best=$(awk -v b="$best" -v s="$start" -v e="$end" 'BEGIN{t=e-s; print (t<b)?t:b}')
  done
  NOOP=$best
}

# Each round works in a fresh folder, and nothing is deleted until the end: ext4 allocates
# inodes slowly right after a mass delete, which would charge one tool for another's cleanup.
round_reprepro() {
  mkdir -p rr/conf
  printf 'Origin: Bench\nLabel: Bench\nCodename: stable\nArchitectures: amd64\nComponents: main\nSignWith: %s\n' "$KEY" > rr/conf/distributions
  timed reprepro -b rr includedeb stable "$WORK"/debs/*.deb
  noop reprepro -b rr export stable
  PACKAGES=rr/dists/stable/main/binary-amd64/Packages
}
round_aptly() {
  echo "{\"rootDir\": \"$PWD/aptly\", \"gpgProvider\": \"gpg2\"}" > aptly.conf
  aptly -config=aptly.conf repo create -distribution=stable -component=main bench >/dev/null
  timed aptly -config=aptly.conf repo add bench "$WORK/debs/"
  timed aptly -config=aptly.conf publish repo -architectures=amd64 -acquire-by-hash -gpg-key="$KEY" -batch bench
  noop aptly -config=aptly.conf publish update -gpg-key="$KEY" -batch stable
  zcat aptly/public/dists/stable/main/binary-amd64/Packages.gz > aptly.Packages; PACKAGES=aptly.Packages
}
round_airlock() {
  "$AIRLOCK" --quiet init site >/dev/null
  printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n' > site/airlock.toml
  timed "$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main "$WORK/debs"
  timed "$AIRLOCK" --quiet --config site/airlock.toml publish
  noop "$AIRLOCK" --quiet --config site/airlock.toml publish
  gpgv --keyring site/airlock.gpg site/data/public/apt/bench/dists/stable/InRelease 2>/dev/null || { echo "airlock's InRelease does not verify" >&2; exit 1; }
  PACKAGES=site/data/public/apt/bench/dists/stable/main/binary-amd64/Packages
}

declare -A TIME RSS NOOPS
for tool in reprepro aptly airlock; do
  times=() peaks=() noops=()
  for round in $(seq "$ROUNDS"); do
    mkdir -p "$WORK/$tool-$round" && cd "$WORK/$tool-$round"
    sync  # each round pays for flushing its own writes only (airlock flushes; the others do not)
    ELAPSED=0 PEAK=0
    "round_$tool"
    n=$(grep -c '^Package: ' "$PACKAGES")
    cd "$WORK"
    [ "$n" = "$COUNT" ] || { echo "$tool published $n packages, expected $COUNT" >&2; exit 1; }
    times+=("$ELAPSED") peaks+=("$PEAK") noops+=("$NOOP")
  done
  TIME[$tool]=$(printf '%s\n' "${times[@]}" | median)
  RSS[$tool]=$(printf '%s\n' "${peaks[@]}" | median)
  NOOPS[$tool]=$(printf '%s\n' "${noops[@]}" | median)
  echo "$tool: rounds ${times[*]} s"
done

echo
echo "$COUNT packages, median of $ROUNDS rounds, $(nproc) cores, $(uname -r)"
echo "reprepro $(reprepro --version 2>&1 | awk '{print $NF; exit}'), aptly $(aptly version | awk '{print $NF}'), airlock $("$AIRLOCK" --version | awk '{print $NF}')"
printf '%-10s %12s %10s %18s\n' tool "add+publish" "peak RSS" "no-change publish"
for t in reprepro aptly airlock; do
  printf '%-10s %11.2fs %7d MB %17.3fs\n' "$t" "${TIME[$t]}" $(( RSS[$t] / 1024 )) "${NOOPS[$t]}"
done
faster=$(awk -v a="${TIME[reprepro]}" -v b="${TIME[aptly]}" 'BEGIN{print (a<b)?a:b}')
awk -v f="$faster" -v s="${TIME[airlock]}" 'BEGIN{printf "add+publish: airlock %.1fx faster than the faster peer (target 3x)\n", f/s}'
awk -v a="${NOOPS[reprepro]}" -v b="${NOOPS[aptly]}" -v s="${NOOPS[airlock]}" \
  'BEGIN{f=(a<b)?a:b; printf "no-change publish: airlock %.0f ms, %.1fx faster than the faster peer (target under 50 ms)\n", s*1000, f/s}'
