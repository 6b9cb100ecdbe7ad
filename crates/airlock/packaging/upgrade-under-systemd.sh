#!/bin/bash
# Installs the airlock package, version N, then N+1 over it, under a real systemd (PID 1 of a
# systemd-nspawn container) and shows that the upgrade keeps the config (a conffile the
# operator edited), the signing key and the data, and restarts the service; then starts the
# unit without its data folder and shows what the journal says.
#
# Run by hand, as root, from anywhere in the workspace (CI does not: it needs root and a
# Debian mirror; tests/it/package.rs checks the package without systemd):
#   sudo crates/airlock/packaging/upgrade-under-systemd.sh
# Needs:
#   - root with CAP_SYS_ADMIN (mounts, namespaces); a host whose PID 1 is not systemd (a
#     docker container) is fine: the container is booted with --register=no --keep-unit, so
#     nspawn needs neither the host's systemd nor its D-Bus;
#   - apt-get install debootstrap systemd-container;
#   - cargo-deb (cargo install cargo-deb --locked);
#   - a Debian mirror for the first run (MIRROR, default http://deb.debian.org/debian): the
#     base system is made once in ROOT (default /var/tmp/airlock-nspawn-root, ~200 MB) and
#     reused; each run boots a throwaway copy of it (--ephemeral), so ROOT stays clean.
# N and N+1 are the same build with Debian revisions -1 and -2: what is shown is dpkg's
# upgrade path (maintainer scripts, conffile, unit restart), which does not depend on the code.
set -euo pipefail

ROOT=${ROOT:-/var/tmp/airlock-nspawn-root}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
WORKSPACE=$(cd "$(dirname "$0")/../../.." && pwd)
DEBS=$(mktemp -d /var/tmp/airlock-upgrade-debs.XXXXXX)
NSPAWN_PID=

step() { printf '\n=== %s\n' "$*"; }

cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill "$NSPAWN_PID" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 1; done
        kill -9 "$NSPAWN_PID" 2>/dev/null || true
    fi
    rm -rf "$DEBS" "$DEBS.console"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for tool in debootstrap systemd-nspawn nsenter cargo; do
    command -v "$tool" >/dev/null || { echo "needs $tool (see the comment at the top)" >&2; exit 1; }
done

step "packages N and N+1 (cargo deb -p airlock)"
cd "$WORKSPACE"
VERSION=$(cargo pkgid -p airlock | sed 's/.*[#@]//')
N="$VERSION-1"
NEXT="$VERSION-2"
export CARGO_TARGET_DIR="$WORKSPACE/target/package"
cargo deb -p airlock --locked --deb-version "$N" --output "$DEBS/" >/dev/null
cargo deb -p airlock --locked --no-build --deb-version "$NEXT" --output "$DEBS/" >/dev/null
# Readable in the container by the airlock user too.
chmod 755 "$DEBS" && chmod 644 "$DEBS"/*.deb
ls -l "$DEBS"

if [ ! -x "$ROOT/usr/lib/systemd/systemd" ]; then
    step "base system in $ROOT (debootstrap, once)"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$SUITE" "$ROOT" "$MIRROR"
fi

step "boot: systemd-nspawn -b (systemd as the container's PID 1)"
systemd-nspawn --quiet --directory="$ROOT" --ephemeral --register=no --keep-unit \
    --private-network --bind-ro="$DEBS:/debs" --boot --console=pipe \
    </dev/null >"$DEBS.console" 2>&1 &
NSPAWN_PID=$!
INIT=
for _ in $(seq 60); do
    INIT=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
    [ -n "$INIT" ] && break
    sleep 1
done
[ -n "$INIT" ] || { cat "$DEBS.console" >&2; echo "the container did not start systemd" >&2; exit 1; }

# A command in the container: all its namespaces, a clean environment.
inside() {
    nsenter --target "$INIT" --all env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}
# systemctl answers once systemd's own socket is up, a moment after systemd started.
state=
for _ in $(seq 120); do
    state=$(inside systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in running | degraded | maintenance | stopping) break ;; esac
    sleep 1
done
echo "PID 1: $(inside cat /proc/1/comm); systemctl is-system-running: $state"
case "$state" in running | degraded) ;; *) echo "systemd did not come up" >&2; exit 1 ;; esac
inside systemctl --failed --no-legend --no-pager
# The name the default public URL uses resolves, as the Debian installer's /etc/hosts makes it.
inside sh -c 'echo "127.0.1.1 $(hostname)" >>/etc/hosts'

# The service's PID and start time.
service() {
    inside systemctl show airlock --property=ActiveState,SubState,MainPID,ExecMainStartTimestamp |
        sed 's/^/  /'
}
main_pid() { inside systemctl show airlock --property=MainPID --value; }
# The site's files, by checksum: config, key, and every file under the data folder.
checksums() {
    inside sh -c 'cd /var/lib/airlock && find /etc/airlock/airlock.toml airlock.key airlock.gpg \
        data -type f | LC_ALL=C sort | xargs sha256sum'
}
# What the upgrade did to the files of `checksums` before it ($1): kept, changed, removed, added.
compare() {
    local before after
    before=$(echo "$1" | LC_ALL=C sort)
    after=$(checksums | LC_ALL=C sort)
    KEPT=$(LC_ALL=C comm -12 <(echo "$before") <(echo "$after") | wc -l)
    LOST=$(LC_ALL=C comm -23 <(echo "$before") <(echo "$after"))
    ADDED=$(LC_ALL=C comm -13 <(echo "$before") <(echo "$after"))
    echo "  $KEPT files as before (config, key, data)"
    echo "  changed or removed: ${LOST:-none}"
    echo "  added: ${ADDED:-none}"
}
# GET PATH from the server with bash's /dev/tcp (the base system has no curl): status line.
http_get() {
    inside bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET $2 HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && head -1 <&3 | tr -d '\\r'"
}
wait_active() {
    for _ in $(seq 30); do
        [ "$(inside systemctl is-active airlock || true)" = active ] && return 0
        sleep 1
    done
    inside systemctl status airlock --no-pager || true
    return 1
}

step "dpkg -i airlock $N"
inside dpkg -i "/debs/airlock_${N}_amd64.deb" </dev/null
wait_active
echo "systemctl is-active airlock: $(inside systemctl is-active airlock)"
service
echo "GET /airlock.gpg on :80: $(http_get 80 /airlock.gpg)"

step "the operator edits the conffile (listen on :8080) and publishes a repository"
inside sed -i 's/^listen = "0.0.0.0:80"$/listen = "0.0.0.0:8080"  # edited by the operator/' \
    /etc/airlock/airlock.toml
inside grep -n '^listen' /etc/airlock/airlock.toml
inside runuser -u airlock -- airlock --config /etc/airlock/airlock.toml \
    apt include local stable main "/debs/airlock_${N}_amd64.deb"
inside runuser -u airlock -- airlock --config /etc/airlock/airlock.toml publish
BEFORE_PID=$(main_pid)
BEFORE=$(checksums)
echo "$BEFORE" | grep -v ' data/' | sed 's/^/  /'
echo "  data: $(echo "$BEFORE" | grep -c ' data/') files"

step "dpkg -i airlock $NEXT (over $N)"
inside dpkg -i "/debs/airlock_${NEXT}_amd64.deb" </dev/null
wait_active
inside dpkg-query -W -f='installed: ${Package} ${Version} ${db:Status-Status}\n' airlock
service
AFTER_PID=$(main_pid)
compare "$BEFORE"
echo "MainPID $BEFORE_PID -> $AFTER_PID: $([ "$BEFORE_PID" != "$AFTER_PID" ] && echo restarted || echo NOT restarted)"
inside grep -n '^listen' /etc/airlock/airlock.toml
echo "GET /apt/local/dists/stable/InRelease on :8080 (the edited listen): $(http_get 8080 /apt/local/dists/stable/InRelease)"
if [ "$BEFORE_PID" = "$AFTER_PID" ] || [ -n "$LOST" ] || [ "$(inside systemctl is-active airlock)" != active ]; then
    echo "the upgrade did not keep the site or did not restart the service" >&2
    exit 1
fi

step "systemctl reload airlock (SIGHUP: the same process reads airlock.toml again)"
if ! inside systemctl reload airlock; then
    inside journalctl -u airlock --no-pager -o cat --since=-10s | tail -n 5 | sed 's/^/  journal: /'
    exit 1
fi
sleep 1
echo "MainPID after reload: $(main_pid) (was $AFTER_PID); is-active: $(inside systemctl is-active airlock)"
inside journalctl -u airlock --no-pager -o cat --since=-10s | grep -i reload | tail -n 3 | sed 's/^/  journal: /'

step "the timers and their services, run once under systemd"
inside systemctl list-timers 'airlock-*' --all --no-pager | sed 's/^/  /'
FAILED_JOBS=
for job in airlock-publish airlock-verify airlock-gc; do
    inside systemctl start "$job.service" || FAILED_JOBS="$FAILED_JOBS $job"
    echo "  $job.service: $(inside systemctl show "$job" --property=Result --value), exit status $(inside systemctl show "$job" --property=ExecMainStatus --value)"
    inside journalctl -u "$job" --no-pager -o cat --since=-20s | grep -v '^\(Starting\|Finished\|Started\|Deactivated\)' |
        tail -n 6 | sed 's/^/    journal: /'
done
inside systemd-analyze security airlock.service --no-pager | tail -n 1 | sed 's/^/  airlock.service: /'

step "the unit started without its data folder"
inside systemctl stop airlock
inside mv /var/lib/airlock/data /var/lib/airlock/data.away
inside systemctl reset-failed airlock
inside systemctl start airlock || true
sleep 3
inside systemctl show airlock --property=ActiveState,SubState,Result,ExecMainStatus | sed 's/^/  /'
inside journalctl -u airlock --no-pager -o cat --since=-30s | tail -n 8 | sed 's/^/  journal: /'
if inside journalctl -u airlock --no-pager -o cat | grep -qi 'panicked'; then
    echo "the journal holds a panic" >&2
    exit 1
fi
inside systemctl stop airlock
inside mv /var/lib/airlock/data.away /var/lib/airlock/data
inside systemctl reset-failed airlock
inside systemctl start airlock
wait_active
echo "data folder back: systemctl is-active airlock: $(inside systemctl is-active airlock)"

if [ -n "$FAILED_JOBS" ]; then
    echo "failed under systemd:$FAILED_JOBS" >&2
    exit 1
fi
step "done: the upgrade kept config, key and data and restarted the service; reload, jobs and the missing data folder as shown"
