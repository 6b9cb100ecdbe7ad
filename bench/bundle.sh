#!/usr/bin/env bash
# bundle benchmark: `airlock export` and `airlock import` against the script an operator would
# write with tar and sha256sum, and against the disk's own sequential speed.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/bundle.sh [COUNT] [SIZE_MB] [ROUNDS]   (default 10 x 512 MB, 3 rounds)
#
# Site A: one repo of COUNT packages of SIZE_MB random bytes each (5 GB by default), published.
# Site B: a new site with the same repo table, trusting A's key ([import] trusted_keys).
# Export: `airlock export --to DIR` (every blob read, checked against its name, written to one
# tar volume; the manifest signed) against `sha256sum` of the same blob files followed by
# `tar -cf` of them, one after the other; tar alone and sha256sum alone are timed too.
# Import: `airlock import DIR` into an empty data folder of site B (every entry and byte
# checked, stored, the repo re-signed and published) against `tar -xf` of the peer's tar into
# an empty folder followed by `sha256sum -c` of the extracted files; each alone too.
# Every timing ends with `sync`, on both sides (airlock flushes by itself; the peers do not),
# so every byte written is on the disk when the clock stops.
# Cold: the files read are dropped from the page cache before each run (posix_fadvise
# DONTNEED through `dd iflag=nocache`: no root needed, other processes' cache untouched), so
# reads come from the disk; this is the main comparison. Warm: the files read are in the page
# cache; writes still go to the disk (sync). On a VM the host may cache the virtual disk too:
# "cold" then means cold for this kernel only.
# The disk: dd of DISK_MB (2048) with 1 MiB blocks and O_DIRECT, write then read (the
# sequential speed the target refers to), and a dd copy of that file (O_DIRECT both sides:
# each byte read then written, as an export or import must), on the same filesystem; one
# core's hashing speed with sha256sum and openssl. Peak RSS of airlock over all rounds.
# Medians of ROUNDS. The default takes about 25 minutes on 2 cores (sha256sum's 0.2 GB/s).
# Another device: with OTHER_DIR set (a folder on another disk, or /dev/shm), airlock also
# exports to it and imports from it, so that this disk only reads or only writes (as with a
# USB disk); those runs are set against the disk's read and write speed respectively.
# At most three copies of the data are on the disk at once (A's store and both exports, then
# both exports and one import; A's store is deleted before the imports); the free space is
# checked first.
# Needs: tar, coreutils, openssl, dpkg-deb, time (apt-get install tar coreutils openssl dpkg time).
set -euo pipefail
COUNT=${1:-10}
SIZE_MB=${2:-512}
ROUNDS=${3:-3}
DISK_MB=${DISK_MB:-2048}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup bundle "apt-get install tar coreutils openssl dpkg time" tar sha256sum openssl dpkg-deb /usr/bin/time

DATA_MB=$((COUNT * SIZE_MB))
NEED_MB=$((3 * DATA_MB > 2 * DISK_MB ? 3 * DATA_MB : 2 * DISK_MB))
NEED_MB=$((NEED_MB + 1024))
FREE_MB=$(( $(df -P -k "$WORK" | awk 'NR==2{print $4}') / 1024 ))
if [ "$FREE_MB" -lt "$NEED_MB" ]; then
  echo "$WORK has $FREE_MB MB free; $COUNT x $SIZE_MB MB needs $NEED_MB MB (three copies of the data and 1 GB spare): free some space, set BENCH_DIR or give a smaller COUNT or SIZE_MB" >&2
  exit 2
fi

seconds() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/err" || { echo "failed: $*" >&2; cat "$WORK/err" >&2; return 1; }
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'
}
# evict PATH...: the files under PATH flushed and out of the page cache: the next read is from the disk.
evict() { sync; find "$@" -type f -exec dd if={} iflag=nocache count=0 status=none \; ; }
# warm PATH...: the files under PATH read into the page cache.
warm() { find "$@" -type f -exec cat {} + >/dev/null; }
# inputs MODE PATH...: the files a run reads, cold or warm.
inputs() { local mode=$1; shift; if [ "$mode" = cold ]; then evict "$@"; else sync; warm "$@"; fi; }
RSS_EXPORT=0 RSS_IMPORT=0
rss_max() { local r; r=$(cat "$WORK/rss"); echo $((r > $1 ? r : $1)); }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "measuring the disk ($DISK_MB MB, 1 MiB blocks)..."
dw=() dr=() dc=()
for round in $(seq "$ROUNDS"); do
  dw+=("$(seconds dd if=/dev/zero of=probe bs=1M count="$DISK_MB" oflag=direct)")
  dr+=("$(seconds dd if=probe of=/dev/null bs=1M iflag=direct)")
  dc+=("$(seconds dd if=probe of=probe2 bs=1M iflag=direct oflag=direct)")
  rm -f probe probe2
done
mbps() { awk -v m="$DISK_MB" -v t="$1" 'BEGIN{printf "%.2f", m*1048576/t/1e9}'; }
DISK_W=$(mbps "$(printf '%s\n' "${dw[@]}" | median)")
DISK_R=$(mbps "$(printf '%s\n' "${dr[@]}" | median)")
DISK_C=$(mbps "$(printf '%s\n' "${dc[@]}" | median)")

echo "building site A: $COUNT packages of $SIZE_MB MB..."
"$AIRLOCK" --quiet init A >/dev/null
"$AIRLOCK" --quiet init B >/dev/null
REPO='[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n'
printf "[site]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nsigning_key = \"airlock.key\"\n\n$REPO" > A/airlock.toml
printf "[site]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nsigning_key = \"airlock.key\"\n\n$REPO\n[import]\ntrusted_keys = [\"../A/airlock.gpg\"]\n" > B/airlock.toml
fill_bench_repo A/airlock.toml "$COUNT" "$SIZE_MB"
STORE=A/data/store/sha256
BYTES=$(du -sbL "$STORE" | awk '{print $1}')
FILES=$(find "$STORE" -type f | wc -l)
BIGGEST=$(find "$STORE" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
warm "$BIGGEST"
ONE_SUM=$(seconds sha256sum "$BIGGEST") ONE_SSL=$(seconds openssl dgst -sha256 "$BIGGEST")
ONE_BYTES=$(stat -c %s "$BIGGEST")

# Export: airlock's bundle in out/air, the peer's tar and sums in out/peer.
air_export() { /usr/bin/time -f '%M' -o "$WORK/rss" "$AIRLOCK" --quiet --config A/airlock.toml export --to out/air && sync; }
peer_sums() { (cd "$STORE" && find . -type f -print0 | xargs -0 sha256sum) > out/peer/SHA256SUMS && sync; }
peer_tar() { tar -cf out/peer/blobs.tar -C "$STORE" . && sync; }
peer_export() {
  (cd "$STORE" && find . -type f -print0 | xargs -0 sha256sum) > out/peer/SHA256SUMS
  tar -cf out/peer/blobs.tar -C "$STORE" . && sync
}
fresh_out() { rm -rf out; mkdir -p out/peer; sync; }

declare -A T   # T[side.variant.what]: the round times, one per line
add() { T[$1]+="$2"$'\n'; }
med() { printf '%s' "${T[$1]}" | median; }

for mode in cold warm; do
  for round in $(seq "$ROUNDS"); do
    if [ "$mode" = cold ]; then
      fresh_out; inputs cold "$STORE"; t=$(seconds peer_tar); add export.cold.tar "$t"
      fresh_out; inputs cold "$STORE"; t=$(seconds peer_sums); add export.cold.sums "$t"
    fi
    fresh_out; inputs "$mode" "$STORE"; t=$(seconds air_export); add "export.$mode.air" "$t"
    RSS_EXPORT=$(rss_max "$RSS_EXPORT")
    inputs "$mode" "$STORE"; t=$(seconds peer_export); add "export.$mode.peer" "$t"
    echo "export, $mode, round $round: airlock $(printf '%s' "${T[export.$mode.air]}" | tail -1) s, sha256sum then tar $t s"
  done
done
"$AIRLOCK" --config A/airlock.toml bundle inspect out/air >/dev/null
OTHER=
if [ -n "${OTHER_DIR:-}" ]; then
  OTHER=$(mktemp -d "$OTHER_DIR/airlock-bundle.XXXXXX")
  trap 'bench_cleanup; rm -rf "$OTHER"' EXIT
  other_export() { "$AIRLOCK" --quiet --config A/airlock.toml export --to "$OTHER/air" && sync; }
  for round in $(seq "$ROUNDS"); do
    rm -rf "$OTHER/air"; inputs cold "$STORE"; t=$(seconds other_export); add other.export "$t"
    echo "export to $OTHER_DIR, cold, round $round: airlock $t s"
  done
fi
rm -rf A/data   # the exports stay, for the imports: still three copies at most
sync

# Import: into B's empty data folder, or the peer's into x/.
fresh_b() { rm -rf B/data x; mkdir B/data x; sync; }
air_import() { /usr/bin/time -f '%M' -o "$WORK/rss" "$AIRLOCK" --quiet --config B/airlock.toml import out/air && sync; }
peer_untar() { tar -xf out/peer/blobs.tar -C x && sync; }
peer_check() { (cd x && sha256sum --quiet -c ../out/peer/SHA256SUMS) && sync; }
peer_import() {
  tar -xf out/peer/blobs.tar -C x
  (cd x && sha256sum --quiet -c ../out/peer/SHA256SUMS) && sync
}
for mode in cold warm; do
  for round in $(seq "$ROUNDS"); do
    if [ "$mode" = cold ]; then
      fresh_b; inputs cold out/peer; t=$(seconds peer_untar); add import.cold.tar "$t"
      inputs cold x; t=$(seconds peer_check); add import.cold.sums "$t"
    fi
    fresh_b; inputs "$mode" out/peer; t=$(seconds peer_import); add "import.$mode.peer" "$t"
    fresh_b; inputs "$mode" out/air; t=$(seconds air_import); add "import.$mode.air" "$t"
    RSS_IMPORT=$(rss_max "$RSS_IMPORT")
    echo "import, $mode, round $round: airlock $t s, tar -x then sha256sum -c $(printf '%s' "${T[import.$mode.peer]}" | tail -1) s"
  done
done
if [ -n "$OTHER" ]; then
  other_import() { "$AIRLOCK" --quiet --config B/airlock.toml import "$OTHER/air" && sync; }
  for round in $(seq "$ROUNDS"); do
    fresh_b; t=$(seconds other_import); add other.import "$t"
    echo "import from $OTHER_DIR, round $round: airlock $t s"
  done
fi
"$AIRLOCK" --quiet --config B/airlock.toml verify --offline >/dev/null || { echo "verify --offline of site B failed after the import" >&2; exit 1; }
while read -r digest _; do
  [ -f "B/data/store/sha256/${digest:0:2}/$digest" ] || { echo "site B lacks blob $digest of site A after the import" >&2; exit 1; }
done < out/peer/SHA256SUMS

gbps() { awk -v b="$BYTES" -v t="$1" 'BEGIN{printf "%.2f", b/t/1e9}'; }
faster() { awk -v a="$1" -v p="$2" 'BEGIN{printf "%.2f", p/a}'; }
pct() { awk -v b="$BYTES" -v t="$1" -v d="$2" 'BEGIN{printf "%.0f", 100*b/t/1e9/d}'; }
DISK=$(awk -v w="$DISK_W" -v r="$DISK_R" 'BEGIN{print (w<r?w:r)}')
FS=$(df -P -T "$WORK" | awk 'NR==2{print $2" on "$1}')
echo
echo "$(nproc) cores, $(uname -r), $(free -g | awk '/^Mem/{print $2}') GB RAM, load $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $((BYTES / 1024 / 1024)) MB in $FILES blobs; medians of $ROUNDS"
echo "disk ($FS): write $DISK_W GB/s, read $DISK_R GB/s (dd, 1 MiB blocks, O_DIRECT); copy $DISK_C GB/s (dd, O_DIRECT read and write)"
awk -v b="$ONE_BYTES" -v s="$ONE_SUM" -v o="$ONE_SSL" 'BEGIN{printf "one core hashes %.2f GB/s with sha256sum, %.2f GB/s with openssl (page cache)\n", b/s/1e9, b/o/1e9}'
for side in export import; do
  if [ "$side" = export ]; then peer="sha256sum then tar -c" tar="tar -c" sums="sha256sum"; rss=$RSS_EXPORT
  else peer="tar -x then sha256sum -c" tar="tar -x" sums="sha256sum -c"; rss=$RSS_IMPORT; fi
  for mode in cold warm; do
    AIR=$(med "$side.$mode.air") P=$(med "$side.$mode.peer")
    line="$side, $mode: airlock $AIR s ($(gbps "$AIR") GB/s); $peer $P s ($(gbps "$P") GB/s): airlock $(faster "$AIR" "$P")x as fast"
    if [ "$mode" = cold ]; then
      TA=$(med "$side.cold.tar") S=$(med "$side.cold.sums")
      line="$line; $tar alone $TA s ($(gbps "$TA") GB/s), $sums alone $S s ($(gbps "$S") GB/s)"
    fi
    echo "$line"
  done
  AIR=$(med "$side.cold.air")
  echo "$side: airlock peak RSS $((rss / 1024)) MB; cold, $(pct "$AIR" "$DISK")% of the disk's sequential speed (the slower of read and write; target 70%), $(pct "$AIR" "$DISK_C")% of a dd copy"
done
if [ -n "$OTHER" ]; then
  E=$(med other.export) I=$(med other.import)
  echo "another device ($OTHER_DIR): export to it $E s ($(gbps "$E") GB/s), $(pct "$E" "$DISK_R")% of the disk's read speed; import from it $I s ($(gbps "$I") GB/s), $(pct "$I" "$DISK_W")% of its write speed (target 70%)"
fi
