#!/usr/bin/env bash
# A Debian 12 machine with a real systemd as PID 1, booted in a container on this machine, for
# the tests of the engine's systemd path (test/systemd/). No Docker: the distribution's own
# debootstrap and systemd-nspawn (scripts/install-deps installs them). The container shares the
# host's network, so the host reaches its Nginx on loopback; each container gets its own
# copy-on-write layer over one cached root file system.
#
#   container.sh rootfs CACHE_DIR      build CACHE_DIR/rootfs once (debootstrap), reuse it after; a
#                                      second call waits for a build that is running
#   container.sh start DIR ROOTFS [BIND...]
#                                      boot a container over ROOTFS with its state in DIR; a
#                                      reboot from inside boots it again (BIND: nspawn --bind-ro=)
#   container.sh pid DIR               the container's PID 1 now (it changes at each reboot)
#   container.sh wait DIR [SECONDS]    wait until the container's systemd has finished booting
#   container.sh exec DIR CMD...       run CMD inside, as root, with a clean environment (plus
#                                      the BLUEGREEN_TEST_* and LOOPBACK_* variables of the caller)
#   container.sh stop DIR              halt it (SIGTERM to nspawn, then the cgroup's kill) and
#                                      remove its layer
set -Eeuo pipefail

readonly SUITE=bookworm
readonly MIRROR=${BLUEGREEN_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the first boot's Debian steps expect installed (test/systemd/debian-platform.sh), and
# what the tests use inside: curl, jq for the aws stand-in, procps and iproute2 for the engine;
# logrotate and python3 for the slots' logs (first boot installs logrotate; dnf needs python3).
readonly PACKAGES=systemd,systemd-sysv,dbus,nginx-light,curl,jq,procps,iproute2,unzip,ca-certificates,logrotate,python3-minimal
# Changing how the root file system is built changes this, so a cached one is rebuilt.
readonly ROOTFS_RECIPE="2 $SUITE $PACKAGES"
readonly INSIDE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'container: %s\n' "$*"; }
fail() {
  printf 'container: error: %s\n' "$*" >&2
  exit 1
}
trap 'fail "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR

require_tools() {
  local tool missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) ||
    fail "missing ${missing[*]}: run scripts/install-deps (apt-get install systemd-container debootstrap)."
  ((EUID == 0)) || fail "booting a container needs root."
}

# The packages' services must not start on the host's network before the first boot sets them
# up: Debian enables Nginx with a default site on port 80.
prepare_rootfs() {
  local root=$1
  systemctl --root="$root" disable nginx.service >/dev/null 2>&1
  rm -f "$root/etc/nginx/sites-enabled/default"
  # Timers and checks that only cost CPU in a test machine.
  systemctl --root="$root" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service \
    e2scrub_all.timer fstrim.timer systemd-timesyncd.service >/dev/null 2>&1
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  : >"$root/etc/machine-id"
}

cmd_rootfs() {
  local cache=$1 root started lock
  root=$cache/rootfs
  require_tools debootstrap systemd-nspawn
  mkdir -p "$cache"
  # One build at a time: the test run starts one early (test/systemd/rootfs-early.ts), and the
  # tests' own call waits here for it, then finds the result cached, or builds it if that failed.
  exec {lock}>"$cache/.lock"
  if ! flock -n "$lock"; then
    say "waiting for the build of the root file system that is running"
    flock "$lock"
  fi
  local recipe=''
  { IFS= read -r recipe <"$root/.recipe"; } 2>/dev/null || true
  if [[ $recipe == "$ROOTFS_RECIPE" ]]; then
    say "root file system cached in $root"
    return 0
  fi
  rm -rf "$root" "$root.new"
  say "building a Debian $SUITE root file system in $root (debootstrap, about a minute or two)"
  started=$SECONDS
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root.new" "$MIRROR" >"$cache/debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debootstrap.log" >&2
    fail "debootstrap of Debian $SUITE from $MIRROR failed (log: $cache/debootstrap.log). Nothing was cached; fix the mirror or network and run again."
  fi
  prepare_rootfs "$root.new"
  printf '%s' "$ROOTFS_RECIPE" >"$root.new/.recipe"
  mv "$root.new" "$root"
  say "built in $((SECONDS - started))s, $(du -sh "$root" | cut -f1)"
}

# One per state directory, whichever checkout it is in.
cgroup_name() {
  local hash
  hash=$(printf '%s' "$(readlink -f "$1")" | sha256sum)
  printf 'bluegreen-test-%s' "${hash:0:12}"
}

# The supervisor: boots the container again when it reboots (nspawn exits 133), until stopped.
supervise() {
  local dir=$1 merged=$2 rc boot=0 name
  shift 2
  name=$(cgroup_name "$dir")
  # A cgroup of its own in both hierarchies: nspawn (--keep-unit, no systemd on the host) puts
  # the container's payload under the cgroup it runs in, which two containers must not share.
  mkdir -p "/sys/fs/cgroup/systemd/$name" "/sys/fs/cgroup/unified/$name"
  printf '%s\n' "$BASHPID" >"/sys/fs/cgroup/systemd/$name/cgroup.procs"
  printf '%s\n' "$BASHPID" >"/sys/fs/cgroup/unified/$name/cgroup.procs"
  while :; do
    boot=$((boot + 1))
    printf '%s boot %d\n' "$(date -u +%H:%M:%S.%N)" "$boot" >>"$dir/console.log"
    systemd-nspawn --quiet -D "$merged" --boot --register=no --keep-unit --console=read-only \
      --machine="$name" "$@" >>"$dir/console.log" 2>&1 &
    printf '%s\n' "$!" >"$dir/nspawn.pid"
    rc=0
    wait "$!" || rc=$?
    printf '%s\n' "$rc" >>"$dir/exits"
    [[ $rc == 133 && ! -e $dir/stopping ]] || break
  done
  rm -f "$dir/nspawn.pid"
}

cmd_start() {
  local dir=$1 rootfs=$2 bind
  shift 2
  local -a binds=(--bind-ro=/usr/lib/jvm)
  require_tools systemd-nspawn nsenter
  [[ -f $rootfs/.recipe ]] || fail "$rootfs is not a root file system built by '$0 rootfs'."
  [[ -d /sys/fs/cgroup/unified && -d /sys/fs/cgroup/systemd ]] ||
    fail "this machine has no hybrid cgroup hierarchy (/sys/fs/cgroup/unified and /sys/fs/cgroup/systemd), which these containers are set up for."
  [[ -d /etc/java-17-openjdk ]] && binds+=(--bind-ro=/etc/java-17-openjdk)
  for bind in "$@"; do binds+=("--bind-ro=$bind"); done
  mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
  rm -f "$dir/exits" "$dir/stopping" "$dir/console.log"
  mountpoint -q "$dir/merged" ||
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
  (supervise "$dir" "$dir/merged" "${binds[@]}" </dev/null &>/dev/null &)
  local deadline=$((SECONDS + 20))
  until [[ -f $dir/nspawn.pid ]]; do
    ((SECONDS < deadline)) || fail "systemd-nspawn did not start (see $dir/console.log)."
    sleep 0.05
  done
}

# The container's PID 1: the only child of the nspawn process.
container_pid() {
  local dir=$1 nspawn pid
  nspawn=$(cat "$dir/nspawn.pid" 2>/dev/null) || return 1
  pid=$(pgrep -P "$nspawn" | head -n 1) || return 1
  [[ -n $pid ]] && printf '%s\n' "$pid"
}

cmd_pid() {
  container_pid "$1" || fail "the container in $1 is not running (see $1/console.log)."
}

cmd_wait() {
  local dir=$1 timeout=${2:-60} deadline pid state
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if pid=$(container_pid "$dir") && state=$(timeout 30 nsenter -t "$pid" -a systemctl is-system-running --wait 2>/dev/null); then
      printf '%s\n' "$state"
      return 0
    fi
    # 'degraded' (a unit failed) still means the boot finished: the caller decides.
    if [[ ${state:-} == degraded ]]; then
      printf '%s\n' "$state"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$dir/console.log" >&2 || true
  fail "the container in $dir did not finish booting within ${timeout}s (last state: ${state:-none})."
}

# resume_when_stopped PID: sends SIGCONT to PID whenever it is stopped, until it ends.
# nsenter stays outside the container's PID namespace and passes job control on: when its child
# stops, it stops itself and waits for a SIGCONT. A shutdown inside stops every process there
# (systemd-shutdown sends SIGSTOP to all, then SIGTERM, then SIGCONT), and its SIGCONT cannot
# reach nsenter: nsenter never reaps its child, which stays a zombie the shutdown waits 90 s
# for, and the container's PID namespace never ends (seen here: nsenter in state T, its child
# <defunct>, the old PID 1 in zap_pid_ns_processes). So a command cut off by a reboot inside
# would hang its caller for good.
resume_when_stopped() {
  local pid=$1 state
  while { read -r _ _ state _ <"/proc/$pid/stat"; } 2>/dev/null; do
    [[ $state != T ]] || kill -CONT "$pid" 2>/dev/null || true
    sleep 0.1
  done
}

cmd_exec() {
  local dir=$1 pid name child watcher rc
  shift
  pid=$(container_pid "$dir") || fail "the container in $dir is not running."
  local -a env=(PATH="$INSIDE_PATH" HOME=/root LANG=C.UTF-8)
  for name in $(compgen -e); do
    [[ $name == BLUEGREEN_TEST_* || $name == LOOPBACK_* ]] && env+=("$name=${!name}")
  done
  # In the background with the caller's standard input (bash would give it /dev/null).
  nsenter -t "$pid" -a env -i "${env[@]}" "$@" <&0 &
  child=$!
  # A caller that gives up (a spawnSync timeout) stops the command, as when this exec'd nsenter.
  trap 'kill -TERM "$child" 2>/dev/null || true' TERM INT HUP
  resume_when_stopped "$child" </dev/null >/dev/null 2>&1 &
  watcher=$!
  # wait returns early when a trapped signal arrives: wait again until the command has ended.
  while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  kill "$watcher" 2>/dev/null || true
  exit "$rc"
}

cmd_stop() {
  local dir=$1 nspawn name deadline
  name=$(cgroup_name "$dir")
  touch "$dir/stopping" 2>/dev/null || true
  if nspawn=$(cat "$dir/nspawn.pid" 2>/dev/null); then
    kill -TERM "$nspawn" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while kill -0 "$nspawn" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  # What did not halt (and the payload of a nspawn killed with SIGKILL) ends here.
  if [[ -d /sys/fs/cgroup/unified/$name ]]; then
    echo 1 >"/sys/fs/cgroup/unified/$name/cgroup.kill" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while [[ -s /sys/fs/cgroup/unified/$name/cgroup.procs ]] && ((SECONDS < deadline)); do sleep 0.1; done
    find "/sys/fs/cgroup/unified/$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  fi
  if [[ -d /sys/fs/cgroup/systemd/$name ]]; then
    find "/sys/fs/cgroup/systemd/$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  fi
  if mountpoint -q "$dir/merged" 2>/dev/null; then
    umount "$dir/merged" 2>/dev/null || umount -l "$dir/merged"
  fi
  rm -rf "$dir/upper" "$dir/work" "$dir/merged"
}

main() {
  local command=${1:-}
  (($#)) && shift
  case $command in
    rootfs) (($# == 1)) || fail "usage: $0 rootfs CACHE_DIR"; cmd_rootfs "$@" ;;
    start) (($# >= 2)) || fail "usage: $0 start DIR ROOTFS [BIND...]"; cmd_start "$@" ;;
    pid) (($# == 1)) || fail "usage: $0 pid DIR"; cmd_pid "$@" ;;
    wait) (($# >= 1)) || fail "usage: $0 wait DIR [SECONDS]"; cmd_wait "$@" ;;
    exec) (($# >= 2)) || fail "usage: $0 exec DIR CMD..."; cmd_exec "$@" ;;
    stop) (($# == 1)) || fail "usage: $0 stop DIR"; cmd_stop "$@" ;;
    *) fail "unknown command '$command': rootfs, start, pid, wait, exec or stop." ;;
  esac
}

main "$@"
