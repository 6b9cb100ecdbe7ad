# Helpers shared by the benchmarks. A script sets ROOT (the checkout), sources this file and
# calls bench_setup before anything else.

# bench_setup NAME INSTALL TOOL...: stops (exit 2) naming INSTALL, the command that installs
# them, when a TOOL is missing; builds the release binary unless AIRLOCK names one already;
# makes the scratch folder WORK (under BENCH_DIR, else TMPDIR or /tmp) and enters it. On exit
# the processes in PIDS (and NGINX_PID) are stopped and WORK is removed (bench_cleanup).
bench_setup() {
  local name=$1 install=$2 tool
  shift 2
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool: $install" >&2; exit 2; }
  done
  if [ -z "${AIRLOCK:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p airlock)
    AIRLOCK="$ROOT/target/release/airlock"
  fi
  WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/airlock-$name.XXXXXX")
  PIDS=()
  NGINX_PID=
  trap bench_cleanup EXIT
  cd "$WORK"
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}" $NGINX_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for URL: until it answers (5 s at most).
wait_for() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# start_nginx ROOT PORT: the peer every benchmark compares with or fetches from: nginx with 2
# workers, sendfile and long keep-alive, serving ROOT on 127.0.0.1:PORT; pid in NGINX_PID.
start_nginx() {
  mkdir -p "$WORK/nginx/tmp"
  cat > "$WORK/nginx/nginx.conf" <<CONF
user root;
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 100000;
  client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  server { listen 127.0.0.1:$2; root $1; }
}
CONF
  nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
}

# median < numbers: the middle one (the lower middle for an even count).
median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

# Fills the repo "bench" of the site whose config is $1 with $2 packages of $3 MB of random
# bytes each (uncompressed .debs: building them costs no compression) and publishes it.
fill_bench_repo() {
  local config=$1 count=$2 size_mb=$3 i
  mkdir debs
  for i in $(seq "$count"); do
    mkdir -p "pkg/DEBIAN" "pkg/usr/share/bench"
    printf 'Package: big%s\nVersion: 1\nArchitecture: amd64\nMaintainer: B <b@example.invalid>\nDescription: big\n' "$i" > pkg/DEBIAN/control
    head -c $((size_mb * 1024 * 1024)) /dev/urandom > pkg/usr/share/bench/blob
    dpkg-deb --root-owner-group -Znone --build pkg "debs/big${i}.deb" >/dev/null
    rm -rf pkg
  done
  "$AIRLOCK" --quiet --config "$config" apt include bench stable main debs >/dev/null
  rm -rf debs
  "$AIRLOCK" --quiet --config "$config" publish >/dev/null
}
