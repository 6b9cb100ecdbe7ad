#!/usr/bin/env bash
# Burst benchmark: CLIENTS clients connect at the same instant and each GETs a small .deb
# (about 2.7 KB) once, against `airlock serve` and nginx serving the same file on 127.0.0.1.
#
#   [BENCH_DIR=DIR] [AIRLOCK=BINARY] bench/burst.sh [CLIENTS] [ROUNDS]
#   (default 1000 clients, 5 rounds per server, alternating; AIRLOCK skips the release build)
#
# Prints, per server, the median, p99 and max of the clients' times (connect to last byte, all
# rounds together) and the failures, then airlock's median and max over nginx's; then each
# round's medians and their ratio, and the median of those ratios (on a shared machine a
# neighbour's burst of work spoils single rounds; each round pair ran back to back). The load
# generator is bench/burst (the workspace crate airlock-bench-burst: the clients are tasks on
# an event loop per core). nginx gets 2 workers, 4096 connections each and the same listen
# backlog as airlock (the system's net.core.somaxconn). Needs: nginx curl dpkg-deb.
set -euo pipefail
CLIENTS=${1:-1000}
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
bench_setup burst "apt-get install nginx-light curl dpkg" nginx curl dpkg-deb
(cd "$ROOT" && cargo build --release --quiet -p airlock-bench-burst)
cp "$ROOT/target/release/burst" burst
# The clients' sockets, and the servers' (nginx inherits this shell's limit).
ulimit -n "$(ulimit -Hn)"

"$AIRLOCK" --quiet init site >/dev/null
printf '[site]\ndata_dir = "data"\nlisten = "127.0.0.1:0"\nsigning_key = "airlock.key"\n\n[[apt.repo]]\nname = "bench"\nsuites = ["stable"]\ncomponents = ["main"]\narchitectures = ["amd64"]\n' > site/airlock.toml
mkdir -p pkg/DEBIAN pkg/usr/share/doc/small debs
printf 'Package: small\nVersion: 1\nArchitecture: amd64\nMaintainer: B <b@example.invalid>\nDescription: small\n' > pkg/DEBIAN/control
head -c 2100 /dev/urandom | base64 > pkg/usr/share/doc/small/notes
dpkg-deb --root-owner-group -Zgzip --build pkg debs/small_1_amd64.deb >/dev/null
"$AIRLOCK" --quiet --config site/airlock.toml apt include bench stable main debs >/dev/null
"$AIRLOCK" --quiet --config site/airlock.toml publish >/dev/null
PUBLIC="$WORK/site/data/public"
FILE=/apt/bench/pool/main/s/small/small_1_amd64.deb
SIZE=$(stat -L -c %s "$PUBLIC$FILE")

AIRLOCK_PORT=$(free_port)
"$AIRLOCK" --quiet --config site/airlock.toml serve --listen "127.0.0.1:$AIRLOCK_PORT" 2>/dev/null &
PIDS+=($!)
NGINX_PORT=$(free_port)
BACKLOG=$(cat /proc/sys/net/core/somaxconn)
mkdir -p nginx/tmp
cat > nginx/nginx.conf <<CONF
user root;
worker_processes 2;
worker_rlimit_nofile 16384;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  server { listen 127.0.0.1:$NGINX_PORT backlog=$BACKLOG; root $PUBLIC; }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_for "http://127.0.0.1:$AIRLOCK_PORT$FILE"
wait_for "http://127.0.0.1:$NGINX_PORT$FILE"

# One burst each that is not counted: airlock's first round, right after the start, was often
# far slower than its others, whichever binary (not seen with nginx, nor when nginx went first).
for port in "$AIRLOCK_PORT" "$NGINX_PORT"; do
  ./burst "127.0.0.1:$port" "$FILE" "$CLIENTS" >/dev/null
  sleep 1
done
for round in $(seq "$ROUNDS"); do
  for server in airlock nginx; do
    port=AIRLOCK_PORT; [ "$server" = nginx ] && port=NGINX_PORT
    ./burst "127.0.0.1:${!port}" "$FILE" "$CLIENTS" > round
    cat round >> "times.$server"
    grep -v failed round | median >> "rounds.$server"
    # Let TIME_WAIT sockets and the servers settle between bursts.
    sleep 1
  done
done

summary() {
  local file=$1 ok
  ok=$(grep -v failed "$file" | sort -g)
  printf '%s' "$ok" | awk -v failed="$(grep -c failed "$file" || true)" '
    {v[NR]=$1} END {
      p99 = int(NR * 0.99); if (p99 < 1) p99 = 1
      printf "%.2f %.2f %.2f %d\n", v[int((NR+1)/2)], v[p99], v[NR], failed
    }'
}
read -r a_median a_p99 a_max a_failed < <(summary times.airlock)
read -r n_median n_p99 n_max n_failed < <(summary times.nginx)
echo "$CLIENTS simultaneous connect+GET of a $SIZE-byte .deb, $ROUNDS rounds each, $(nproc) cores"
printf '%-8s %10s %10s %10s %8s\n' server median_ms p99_ms max_ms failed
printf '%-8s %10s %10s %10s %8s\n' airlock "$a_median" "$a_p99" "$a_max" "$a_failed"
printf '%-8s %10s %10s %10s %8s\n' nginx "$n_median" "$n_p99" "$n_max" "$n_failed"
awk -v a="$a_median" -v n="$n_median" -v am="$a_max" -v nm="$n_max" \
  'BEGIN { printf "airlock/nginx: median %.2fx, max %.2fx\n", a / n, am / nm }'
paste rounds.airlock rounds.nginx | awk '{ printf "round %d: airlock %.2f ms, nginx %.2f ms, %.2fx\n", NR, $1, $2, $1 / $2 }' | tee ratios
echo "median of the round ratios: $(sed 's/.*, //; s/x$//' ratios | median)x"
