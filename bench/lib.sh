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

# small_deb NAME VERSION OUT: a gzip .deb of package NAME at VERSION holding 3,000 random
# bytes, written to the file OUT (scratch under $WORK/src). Exported for xargs.
small_deb() {
  local d="$WORK/src/$1-$2"
  mkdir -p "$d/DEBIAN" "$d/usr/share/doc/$1"
  head -c 3000 /dev/urandom > "$d/usr/share/doc/$1/data"
  printf 'Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: Bench <bench@example.invalid>\nSection: misc\nPriority: optional\nDescription: benchmark package %s\n A small package for the benchmarks.\n' "$1" "$2" "$1" > "$d/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip --build "$d" "$3" >/dev/null
  rm -rf "$d"
}
export -f small_deb

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

# start_garage: a one-node Garage (the S3 server the bucket tests use; `GARAGE` names its
# binary, else `garage` on the PATH or in ~/.cargo/bin) on loopback ports, in $WORK/garage,
# with one key: S3_ENDPOINT, S3_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (exported)
# are set. Garage logs every S3 request it receives (garage_api_common at info) into
# GARAGE_LOG: s3_requests counts them.
start_garage() {
  local dir="$WORK/garage" s3 rpc admin id key
  GARAGE=${GARAGE:-$(type -P garage || echo "$HOME/.cargo/bin/garage")}
  [ -x "$GARAGE" ] || { echo "missing garage: cargo install garage --locked --no-default-features --features bundled-libs,lmdb,sqlite" >&2; exit 2; }
  mkdir -p "$dir"
  s3=$(free_port) rpc=$(free_port) admin=$(free_port)
  cat > "$dir/garage.toml" <<CONF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
[admin]
api_bind_addr = "127.0.0.1:$admin"
CONF
  GARAGE_LOG="$dir/garage.log"
  RUST_LOG=garage=warn,garage_api_common=info "$GARAGE" -c "$dir/garage.toml" server > "$GARAGE_LOG" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do garage status >/dev/null 2>&1 && break; sleep 0.2; done
  id=$(garage node id -q | cut -d@ -f1)
  garage layout assign -z dc1 -c 10G "$id" >/dev/null
  garage layout apply --version 1 >/dev/null
  key=$(garage key create bench)
  export AWS_ACCESS_KEY_ID=$(awk '/^Key ID:/{print $3}' <<<"$key")
  export AWS_SECRET_ACCESS_KEY=$(awk '/^Secret key:/{print $3}' <<<"$key")
  S3_ENDPOINT="http://127.0.0.1:$s3" S3_REGION=garage
}
garage() { "$GARAGE" -c "$WORK/garage/garage.toml" "$@"; }
# garage_bucket NAME: a new bucket the key may read and write.
garage_bucket() {
  garage bucket create "$1" >/dev/null
  garage bucket allow --read --write --owner "$1" --key bench >/dev/null
}
# s3_request_lines: the S3 requests Garage has received so far, one line each, cut after the
# method. An error answer (a 404 to a HEAD, say) logs a second line, "error 404 ... in response
# to <the request>": not a request, left out.
s3_request_lines() {
  { grep -v ' in response to ' "$GARAGE_LOG" | grep -o -E 'generic_server.* (GET|HEAD|PUT|POST|DELETE) /'; } || true
}
# s3_requests: how many S3 requests Garage has received so far.
s3_requests() { sleep 0.2; s3_request_lines | wc -l; }
# s3_methods FROM: the requests after the first FROM, by method ("2003 PUT, 4 GET").
s3_methods() {
  sleep 0.2
  s3_request_lines | tail -n +$(($1 + 1)) \
    | awk '{m[$(NF-1)]++} END{for (k in m) printf "%s%d %s", (n++ ? ", " : ""), m[k], k}'
}
# s3_get BUCKET KEY [CURL ARGS]: a signed GET of an object, to stdout.
s3_get() {
  local bucket=$1 key=$2; shift 2
  curl -fsS --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "$S3_ENDPOINT/$bucket/$key"
}
