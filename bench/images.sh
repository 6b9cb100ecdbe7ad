#!/usr/bin/env bash
# Image-mirror benchmark: `airlock sync` of a boot-image stream with large items, against
# what the same machine can do (curl fetching the same files from the same nginx).
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/images.sh [ITEM_MB] [ITEMS] [ROUNDS]   (default 1024 MB x 2, 3 rounds)
#
# The stream is shaped like images.maas.io (one Ubuntu product whose squashfs and initrd are
# the large items, clearsigned by gpg) and served by nginx on 127.0.0.1. Prints throughput,
# peak RSS and the no-op re-sync time. Needs: nginx gpg curl python3 time.
set -euo pipefail
ITEM_MB=${1:-1024}
ITEMS=${2:-2}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup images "apt-get install nginx-light gpg curl python3 time" nginx gpg curl python3 /usr/bin/time
export GNUPGHOME="$WORK/gnupg"; mkdir -m 700 "$GNUPGHOME"
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench Images <img@example.invalid>' ed25519 sign never 2>/dev/null
gpg --export > stream.gpg

echo "building a stream of $ITEMS items of $ITEM_MB MB..."
mkdir -p up/streams/v1 up/noble/amd64/20260101
for i in $(seq "$ITEMS"); do
  head -c "$((ITEM_MB * 1024 * 1024))" /dev/urandom > "up/noble/amd64/20260101/item$i"
done
python3 - "$ITEMS" <<'PY'
import hashlib, json, os, sys
items = {}
for i in range(1, int(sys.argv[1]) + 1):
    path = f"noble/amd64/20260101/item{i}"
    h = hashlib.sha256()
    with open(f"up/{path}", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    items[f"item{i}"] = {"ftype": "squashfs", "path": path, "sha256": h.hexdigest(),
                         "size": os.path.getsize(f"up/{path}")}
cid = "com.ubuntu.maas:stable:v3:download"
name = "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04"
updated = "Thu, 01 Jan 2026 00:00:00 +0000"
products = {"content_id": cid, "datatype": "image-ids", "format": "products:1.0", "updated": updated,
            "products": {name: {"arch": "amd64", "os": "ubuntu", "release": "noble", "version": "24.04",
                                "subarch": "ga-24.04", "label": "stable",
                                "versions": {"20260101": {"items": items}}}}}
index = {"format": "index:1.0", "updated": updated,
         "index": {cid: {"datatype": "image-ids", "format": "products:1.0", "updated": updated,
                         "path": f"streams/v1/{cid}.sjson", "products": [name]}}}
json.dump(products, open(f"up/streams/v1/{cid}.json", "w"), indent=1)
json.dump(index, open("up/streams/v1/index.json", "w"), indent=1)
PY
for doc in up/streams/v1/*.json; do
  gpg --batch --yes --clearsign -o "${doc%.json}.sjson" "$doc"
done
BYTES=$(find up/noble -type f -printf '%s\n' | awk '{s+=$1} END{print s}')

PORT=$(free_port)
start_nginx "$WORK/up" "$PORT"
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/streams/v1/index.sjson" && break; sleep 0.05; done

curl_t=() airlock_t=() airlock_m=() noop_t=()
for round in $(seq "$ROUNDS"); do
  # The limit: curl writing every item to the same filesystem, in parallel like airlock,
  # then flushed as airlock flushes what it stores (curl alone would leave it in the cache).
  rm -rf "curl$round"; mkdir "curl$round"; sync
  s=$(date +%s.%N)
  pids=()
  for i in $(seq "$ITEMS"); do
    curl -fs -o "curl$round/item$i" "http://127.0.0.1:$PORT/noble/amd64/20260101/item$i" & pids+=($!)
  done
  wait "${pids[@]}"   # not a bare wait: nginx is a child of this shell too
  sync
  e=$(date +%s.%N); curl_t+=("$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')")
  rm -rf "curl$round"

  rm -rf "site$round"; "$AIRLOCK" --quiet init "site$round" >/dev/null
  printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\n\n[images]\nurl = "http://127.0.0.1:%s/"\nkeyring = "%s"\n' \
    "$PORT" "$WORK/stream.gpg" > "site$round/airlock.toml"
  sync
  /usr/bin/time -f '%e %M' -o time.out "$AIRLOCK" --quiet --config "site$round/airlock.toml" sync >/dev/null
  read -r t m < time.out; airlock_t+=("$t"); airlock_m+=("$m")
  s=$(date +%s.%N)
  "$AIRLOCK" --quiet --config "site$round/airlock.toml" sync >/dev/null
  e=$(date +%s.%N); noop_t+=("$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')")
  rm -rf "site$round"
done
CT=$(printf '%s\n' "${curl_t[@]}" | median)
AT=$(printf '%s\n' "${airlock_t[@]}" | median)
AM=$(printf '%s\n' "${airlock_m[@]}" | median)
NT=$(printf '%s\n' "${noop_t[@]}" | median)
echo
echo "$(nproc) cores, $(uname -r); nginx $(nginx -v 2>&1 | awk -F/ '{print $NF}'), airlock $("$AIRLOCK" --version | awk '{print $NF}')"
echo "stream of $ITEMS items x $ITEM_MB MB from nginx on loopback (median of $ROUNDS; airlock rounds: ${airlock_t[*]} s):"
awk -v b="$BYTES" -v c="$CT" -v a="$AT" -v m="$AM" -v n="$NT" 'BEGIN{
  printf "  curl + sync        %6.2f s  %7.0f MB/s\n", c, b/c/1e6;
  printf "  airlock sync       %6.2f s  %7.0f MB/s  peak RSS %d MB\n", a, b/a/1e6, m/1024;
  printf "  airlock: %.0f%% of curl throughput (target 90%%); no-op re-sync %.0f ms (target under 100 ms)\n", 100*c/a, n*1000 }'
