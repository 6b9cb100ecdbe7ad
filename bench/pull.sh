#!/usr/bin/env bash
# Pull-through benchmark: airlock (`[proxy] upstream = true`) against apt-cacher-ng, both in
# front of the same upstream archive (nginx on 127.0.0.1 playing archive.ubuntu.com).
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/pull.sh [COUNT] [ROUNDS]      (default 500 packages, 3 rounds)
#
# The client is real apt-get with Acquire::http::Proxy and a sources.list naming
# http://archive.ubuntu.com/ubuntu: `apt-get update` then `apt-get download` of every package.
# First fetch: the proxy's cache is empty, everything comes from the upstream. Second fetch:
# a new client (empty apt state) asks for the same again, served from the cache. Each round
# starts both proxies from nothing. Medians of ROUNDS.
# Needs: apt-cacher-ng nginx apt-utils gpg (apt-get install apt-cacher-ng nginx-light apt-utils gpg).
set -euo pipefail
COUNT=${1:-500}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup pull "apt-get install apt-cacher-ng nginx-light apt-utils gpg" apt-cacher-ng nginx apt-ftparchive gpg
export GNUPGHOME="$WORK/gnupg"; mkdir -m 700 "$GNUPGHOME"

echo "building an upstream of $COUNT packages..."
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench Upstream <up@example.invalid>' ed25519 sign never 2>/dev/null
gpg --export > upstream.gpg
mkdir -p up/ubuntu/pool/main up/ubuntu/dists/stable/main/binary-amd64 src
make_deb() {
  local i=$1 d="$WORK/src/p$1"
  mkdir -p "$d/DEBIAN" "$d/usr/share/doc/up-pkg$i"
  head -c 20000 /dev/urandom > "$d/usr/share/doc/up-pkg$i/data"
  printf 'Package: up-pkg%s\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Bench <bench@example.invalid>\nDescription: upstream package %s\n' "$i" "$i" > "$d/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip --build "$d" "$WORK/up/ubuntu/pool/main/up-pkg${i}_1.0_amd64.deb" >/dev/null
  rm -rf "$d"
}
export -f make_deb; export WORK
seq 1 "$COUNT" | xargs -P "$(nproc)" -I{} bash -c 'make_deb {}'
(
  cd up/ubuntu
  apt-ftparchive --arch amd64 packages pool/main > dists/stable/main/binary-amd64/Packages
  xz -k dists/stable/main/binary-amd64/Packages
  apt-ftparchive -o APT::FTPArchive::Release::Suite=stable -o APT::FTPArchive::Release::Codename=stable \
    -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main \
    -o APT::FTPArchive::DoByHash=true release dists/stable > Release.tmp
  mv Release.tmp dists/stable/Release
  gpg --batch --yes --clearsign -o dists/stable/InRelease dists/stable/Release
)
BYTES=$(du -sb up/ubuntu/pool | awk '{print $1}')
# apt-cacher-ng 3.7 neither listens on nor connects to ports above 32767 (it logs "Error
# resolving address for binding", or answers 503 Connection refused): ports below for both.
low_port() {
  python3 -c 'import random, socket
while True:
    p = random.randint(20000, 32000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass'
}
UP_PORT=$(low_port)
start_nginx "$WORK/up" "$UP_PORT"
PIDS+=("$NGINX_PID")
wait_for "http://127.0.0.1:$UP_PORT/ubuntu/dists/stable/InRelease"
NAMES=$(seq -f 'up-pkg%g' 1 "$COUNT")

# client PROXY_URL: a fresh apt-get state, update and download everything; prints seconds.
client() {
  local dir s e
  dir=$(mktemp -d "$WORK/apt.XXXXXX")
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts" "$dir/prefs" "$dir/download"
  echo "deb [signed-by=$WORK/upstream.gpg] http://archive.ubuntu.com/ubuntu stable main" > "$dir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=$dir/parts"
    -o "Dir::Etc::PreferencesParts=$dir/prefs" -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
    -o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o APT::Sandbox::User=root
    -o Debug::NoLocking=1 -o Acquire::Languages=none -o "Acquire::http::Proxy=$1")
  s=$(date +%s.%N)
  apt-get "${opts[@]}" update >"$dir/update.log" 2>&1 || { cat "$dir/update.log" >&2; exit 1; }
  (cd "$dir/download" && apt-get "${opts[@]}" download $NAMES >"$dir/download.log" 2>&1) || { tail "$dir/download.log" >&2; exit 1; }
  e=$(date +%s.%N)
  local got
  got=$(find "$dir/download" -name '*.deb' | wc -l)
  [ "$got" = "$COUNT" ] || { echo "the client got $got of $COUNT packages through $1" >&2; exit 1; }
  rm -rf "$dir"
  awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'
}

run_airlock() { # ROUND: prints "first second"
  local site="$WORK/airlock-$1" port
  "$AIRLOCK" --quiet init "$site" >/dev/null
  port=$(free_port)
  printf '[site]\ndata_dir = "data"\nsigning_key = "airlock.key"\nlisten = "127.0.0.1:%s"\n\n[[apt.mirror]]\nname = "ubuntu"\nurl = "http://127.0.0.1:%s/ubuntu/"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\nkeyring = "%s"\n\n[proxy]\nupstream = true\n\n[[proxy.route]]\nhost = "archive.ubuntu.com"\npath = "/ubuntu"\nto = "apt/ubuntu"\nupstream = "http://127.0.0.1:%s/ubuntu/"\n' \
    "$port" "$UP_PORT" "$WORK/upstream.gpg" "$UP_PORT" > "$site/airlock.toml"
  "$AIRLOCK" --quiet --config "$site/airlock.toml" serve & local pid=$!
  wait_for "http://127.0.0.1:$port/"
  local first second
  first=$(client "http://127.0.0.1:$port")
  second=$(client "http://127.0.0.1:$port")
  echo "$first $second"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_acng() { # ROUND: prints "first second"
  local dir="$WORK/acng-$1" port
  port=$(low_port)
  mkdir -p "$dir/conf" "$dir/cache" "$dir/log"
  # Requests for archive.ubuntu.com/ubuntu go to the local upstream instead of the internet.
  cat > "$dir/conf/acng.conf" <<CONF
CacheDir: $dir/cache
LogDir: $dir/log
SupportDir: /usr/lib/apt-cacher-ng
Port: $port
BindAddress: 127.0.0.1
Remap-bench: archive.ubuntu.com/ubuntu ; http://127.0.0.1:$UP_PORT/ubuntu/
CONF
  apt-cacher-ng -c "$dir/conf" ForeGround=1 >"$dir/log/stdout" 2>&1 & local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  local first second
  first=$(client "http://127.0.0.1:$port")
  second=$(client "http://127.0.0.1:$port")
  echo "$first $second"
  # apt-cacher-ng does not always stop on SIGTERM.
  kill "$pid"; sleep 0.5; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}

a_first=() a_second=() c_first=() c_second=()
for round in $(seq "$ROUNDS"); do
  sync
  run_airlock "$round" > times; read -r f s < times; a_first+=("$f") a_second+=("$s")
  sync
  run_acng "$round" > times; read -r f s < times; c_first+=("$f") c_second+=("$s")
  echo "round $round: airlock ${a_first[-1]} s then ${a_second[-1]} s; apt-cacher-ng ${c_first[-1]} s then ${c_second[-1]} s"
done
AF=$(printf '%s\n' "${a_first[@]}" | median) AS=$(printf '%s\n' "${a_second[@]}" | median)
CF=$(printf '%s\n' "${c_first[@]}" | median) CS=$(printf '%s\n' "${c_second[@]}" | median)

echo
echo "$(nproc) cores, $(uname -r); apt-cacher-ng $(dpkg-query -W -f='${Version}' apt-cacher-ng), airlock $("$AIRLOCK" --version | awk '{print $NF}'), apt $(dpkg-query -W -f='${Version}' apt)"
echo "apt-get update + download of $COUNT packages ($((BYTES / 1024 / 1024)) MB) through the proxy, median of $ROUNDS:"
printf '  %-14s %12s %12s\n' proxy "first fetch" "second fetch"
printf '  %-14s %11.2fs %11.2fs\n' airlock "$AF" "$AS" apt-cacher-ng "$CF" "$CS"
awk -v af="$AF" -v as="$AS" -v cf="$CF" -v cs="$CS" \
  'BEGIN{printf "  airlock: first fetch %.2fx, second fetch %.2fx the speed of apt-cacher-ng\n", cf/af, cs/as}'
