# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# Running the two slots: as systemd units on the host, as plain processes locally.
# Sourced, never run.

# The unprivileged user systemd runs the slots as (User= in bluegreen-slot@.service).
readonly SLOT_USER=bluegreen

# The umask the app starts with: systemd's default UMask= for a unit, which the process runner
# gives its apps too, instead of the engine's own.
readonly APP_UMASK=0022

# The user and its group of the same name (Group= in the unit; share_with_slots).
ensure_slot_user() {
  id -u "$SLOT_USER" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir "$BLUEGREEN_HOME" --shell /sbin/nologin "$SLOT_USER"
  log init "created the system user $SLOT_USER that runs the slots"
}

# share_with_slots PATH...: gives PATHs to the slot user's group, so that the app can reach what
# it runs (the modes are the engine's umask's: a directory can be searched, a file read). Only
# the systemd runner runs the app as another user; the process runner runs it as the engine's own.
share_with_slots() {
  [[ $BLUEGREEN_RUNNER == systemd ]] || return 0
  chgrp -- "$SLOT_USER" "$@"
}

slot_log_file() { put "${2:-}" "$BLUEGREEN_LOG_DIR/$1.log"; }

# The app's output goes through lib/log-writer.py, which follows its file when logrotate renames
# it (see there why Python). /usr/bin's, not PATH's: the unit's PATH is systemd's, and a shim on
# a user's PATH would cost every start its own interpreter lookup.
LOG_WRITER_PYTHON=/usr/bin/python3

# log_writer FILE: becomes the log writer of FILE (the app's output on stdin). Run in a process
# substitution by the shell that then execs the app, so that the app keeps the pid the engine
# and systemd know it by (slot_pid, MainPID, oom_score_adj) and the writer is its child. It keeps
# none of the engine's descriptors: not the lock, not the engine's pipe (the writer closes any
# other one it inherits), and its own output is what the caller gives it, never the engine's.
log_writer() {
  # Ignored before the exec, so that no stop signal can reach it before Python ignores it too:
  # only the end of the app's output ends it, after the app's last line.
  trap '' TERM INT HUP
  [[ -z ${LOCK_FD:-} ]] || exec {LOCK_FD}>&-
  exec setsid "$LOG_WRITER_PYTHON" -I -S "$BLUEGREEN_LIB_DIR/lib/log-writer.py" "$1" {ENGINE_PIPE_FD}>&-
}

# share_log_dir: on a host, the slot user may search the log directory (its writer opens its file
# there), never write to it. A directory others may search already (a shared one such as /var/log)
# is left as it is; one the engine made (root's group; the engine's umask leaves others out) goes
# to the slot user's group, as share_with_slots does for the engine's own directories.
share_log_dir() {
  local owner group mode
  [[ $BLUEGREEN_RUNNER == systemd ]] || return 0
  read -r owner group mode < <(stat -c '%U %G %a' "$BLUEGREEN_LOG_DIR")
  ((8#$mode & 8#001)) && return 0
  # Already shared (the usual case: every operation asks): no chgrp, no chmod.
  [[ $owner == root && $group == "$SLOT_USER" ]] && (((8#$mode & 8#030) == 8#010)) && return 0
  if [[ $owner != root || ($group != root && $group != "$SLOT_USER") ]]; then
    warn "the slots' log writers run as $SLOT_USER, which may not enter $BLUEGREEN_LOG_DIR ($owner:$group, mode $mode): their lines are lost. Let others search it (chmod o+x) or use a directory of root's."
    return 0
  fi
  chgrp "$SLOT_USER" "$BLUEGREEN_LOG_DIR"
  chmod g+x,g-w "$BLUEGREEN_LOG_DIR"
}

# prepare_slot_log FILE: on a host, the file exists and belongs to the slot user, whose writer
# appends to it. The directory stays root's and closed to that user, so that the app, if taken
# over, cannot put a symbolic link in it for root to follow (the engine appends to and reads
# these files; logrotate renames and creates them).
prepare_slot_log() {
  [[ $BLUEGREEN_RUNNER == systemd ]] || return 0
  if [[ ! -e $1 ]]; then
    install -o "$SLOT_USER" -g "$SLOT_USER" -m 0600 /dev/null "$1"
  elif [[ -f $1 && ! -L $1 && -O $1 ]]; then
    # An engine before the log writer left it root's (systemd's StandardOutput=append: made it).
    chown "$SLOT_USER:$SLOT_USER" "$1"
  fi
}
slot_pid_file() { put "${2:-}" "$STATE_DIR/slot-$1.pid"; }
slot_unit() { printf '%s@%s.service' "$BLUEGREEN_SYSTEMD_UNIT" "$1"; }

# On a host, logrotate rotates the slots' logs every hour (logrotate/bluegreen). 'bluegreen init'
# installs its configuration and the timer and service that run it from this engine's tree, and so
# does a slot's start when they differ from this engine's: an engine the deploy document updated
# (which runs no init) brings its own at its first deploy. Unchanged, that costs no fork.
# The configuration sits next to the engine's own (/etc/bluegreen on a host, where the service
# unit reads it) and the units in BLUEGREEN_SYSTEMD_DIR, so that a test host writes neither to
# the machine's /etc.
readonly LOGROTATE_TIMER=bluegreen-logrotate.timer
readonly -a LOGROTATE_UNITS=(bluegreen-logrotate.service bluegreen-logrotate.timer)
install_log_rotation() {
  local text unit slot log_file source installed changed=no conf=${BLUEGREEN_CONF:-/etc/bluegreen/bluegreen.conf}
  local logrotate_conf=${conf%/*}/logrotate.conf
  [[ $BLUEGREEN_RUNNER == systemd ]] || return 0
  read_file "$BLUEGREEN_LIB_DIR/logrotate/bluegreen" text ||
    die "$EXIT_UNEXPECTED" "cannot read $BLUEGREEN_LIB_DIR/logrotate/bluegreen: the engine's tree is incomplete. Nothing was changed; install the engine again."
  text=${text//@@LOG_DIR@@/$BLUEGREEN_LOG_DIR}
  text=${text//@@SLOT_USER@@/$SLOT_USER}
  if ! read_file "$logrotate_conf" installed || [[ $installed != "$text" ]]; then
    mkdir -p "${logrotate_conf%/*}"
    # 0644, root's: logrotate refuses a configuration that others may write.
    write_file_atomically "$logrotate_conf" "$text"
    changed=yes
  fi
  for unit in "${LOGROTATE_UNITS[@]}"; do
    read_file "$BLUEGREEN_LIB_DIR/systemd/$unit" source ||
      die "$EXIT_UNEXPECTED" "cannot read $BLUEGREEN_LIB_DIR/systemd/$unit: the engine's tree is incomplete. Nothing was changed; install the engine again."
    read_file "$BLUEGREEN_SYSTEMD_DIR/$unit" installed && [[ $installed == "$source" ]] && continue
    install -D -m 0644 "$BLUEGREEN_LIB_DIR/systemd/$unit" "$BLUEGREEN_SYSTEMD_DIR/$unit"
    changed=yes
  done
  [[ $changed == yes ]] || return 0
  # First install by a new engine: the files an engine before the log writer left root's. (A
  # slot's start prepares its own file anyway.)
  for slot in "${SLOT_NAMES[@]}"; do
    slot_log_file "$slot" log_file
    [[ ! -e $log_file ]] || prepare_slot_log "$log_file"
  done
  systemctl daemon-reload
  systemctl enable --quiet --now "$LOGROTATE_TIMER"
  command -v logrotate >/dev/null ||
    warn "logrotate is not installed, so the slots' logs in $BLUEGREEN_LOG_DIR grow without bound: install it (dnf install -y logrotate)."
  log logs "the slots' logs are rotated by $LOGROTATE_TIMER ($logrotate_conf)"
}

# slot_command SLOT ARRAY: the java command line of a slot, Spring Boot style, into ARRAY. Both
# runners start exactly this: systemd through 'bluegreen exec-slot', the process runner directly
# (a second bash that loads the configuration again would cost every start tens of ms).
slot_command() {
  local slot_command_port slot_command_release slot_command_java_opts slot_command_app_args slot_command_memory_opts
  local -n slot_command_out=$2
  slot_port "$1" slot_command_port
  slot_record_get "$1" release slot_command_release
  [[ -n $slot_command_release && -f $slot_command_release ]] ||
    die "$EXIT_NOTHING_TO_SWITCH_TO" "slot $1 has no release on disk (${slot_command_release:-none recorded}); deploy one with 'bluegreen deploy ARTIFACT'."
  slot_memory_opts slot_command_memory_opts
  read -r -a slot_command_java_opts <<<"$BLUEGREEN_JAVA_OPTS"
  read -r -a slot_command_app_args <<<"$BLUEGREEN_APP_ARGS"
  slot_command_out=("$BLUEGREEN_JAVA" "${slot_command_memory_opts[@]}" "${slot_command_java_opts[@]}" -jar "$slot_command_release"
    "--server.port=$slot_command_port" --server.address=127.0.0.1 "--spring.profiles.active=$1" "${slot_command_app_args[@]}")
}

exec_slot() {
  local -a command
  local log_file
  slot_log_file "$1" log_file
  # From here on this shell's own errors go to the slot's log too, as the app's output does; the
  # writer's own complaints go to the unit's journal (StandardOutput=journal).
  exec > >(log_writer "$log_file") 2>&1
  slot_command "$1" command
  exec "${command[@]}" </dev/null {ENGINE_PIPE_FD}>&- {ENGINE_STDOUT_FD}>&- {ENGINE_STDERR_FD}>&-
}

# A process is gone once /proc has no entry or it is a zombie: PID 1 reaps orphans slowly on
# some machines, and waiting for the zombie to disappear would cost every deploy seconds.
pid_alive() {
  local pid=$1 stat
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# slot_pid SLOT [VAR]: the recorded pid, but only while it is still this slot's java (pids get
# reused); empty when none.
slot_pid() {
  local slot_pid_file slot_pid='' slot_pid_cmdline slot_pid_port
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    slot_pid=$(systemctl show -p MainPID --value "$(slot_unit "$1")" 2>/dev/null || true)
    [[ $slot_pid != 0 ]] || slot_pid=''
    put "${2:-}" "$slot_pid"
    return 0
  fi
  slot_port "$1" slot_pid_port
  slot_pid_file "$1" slot_pid_file
  if read_file "$slot_pid_file" slot_pid; then
    if pid_alive "$slot_pid"; then
      process_cmdline "$slot_pid" slot_pid_cmdline
      if [[ $slot_pid_cmdline == *"--server.port=$slot_pid_port "* ]]; then
        put "${2:-}" "$slot_pid"
        return 0
      fi
    fi
  fi
  # A deploy killed between starting a slot and writing its pid file leaves an app that only
  # its command line identifies.
  for slot_pid in $(pgrep -f -- "-jar $RELEASES_DIR/[^ ]+ --server.port=$slot_pid_port( |\$)" || true); do
    if pid_alive "$slot_pid"; then
      put "${2:-}" "$slot_pid"
      return 0
    fi
  done
  put "${2:-}" ''
}

# process_cmdline PID VAR: the process's arguments joined by spaces (with a trailing one, as
# tr '\0' ' ' gave), or empty when it is gone.
process_cmdline() {
  local -a process_cmdline_args=()
  { mapfile -d '' -t process_cmdline_args <"/proc/$1/cmdline"; } 2>/dev/null || true
  printf -v "$2" '%s ' "${process_cmdline_args[@]}"
  ((${#process_cmdline_args[@]})) || printf -v "$2" ''
}

slot_running() {
  local pid
  slot_pid "$1" pid
  [[ -n $pid ]] && pid_alive "$pid"
}

# Like slot_running, but also true in the instant between fork and exec of a slot just started,
# when its command line is not java's yet.
slot_started_alive() {
  local slot=$1 pid file
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    systemctl is-active --quiet "$(slot_unit "$slot")"
    return
  fi
  slot_pid_file "$slot" file
  { read -r pid <"$file"; } 2>/dev/null || return 1
  pid_alive "$pid"
}

# True while systemd stops every unit for a shutdown or a reboot: a slot that exits then was
# stopped, not broken. Late in a shutdown systemd takes no requests at all: that too.
host_stopping() {
  local state
  # ${...:-}: on_error asks too, and may run before the configuration is read.
  [[ ${BLUEGREEN_RUNNER:-} == systemd ]] || return 1
  state=$(systemctl is-system-running 2>&1) || true
  [[ $state == stopping || $state == 'Failed to connect to bus'* || $state == 'Failed to query system state'* ]]
}

# Connects in this shell (no subshell): the start loop asks several times a second.
port_in_use() {
  local port_fd
  { exec {port_fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  exec {port_fd}>&-
}

# One health probe: HTTP 200 and "status":"UP" in the body, within loopback_get's timeouts.
slot_healthy() {
  local port
  slot_port "$1" port
  loopback_get "$port" "$BLUEGREEN_HEALTH_PATH" body || return 1
  [[ $LOOPBACK_STATUS == 200 && $LOOPBACK_BODY =~ \"status\"[[:space:]]*:[[:space:]]*\"UP\" ]]
}

slot_start() {
  local slot=$1 log_file pid now version pid_file
  local -a command
  slot_log_file "$slot" log_file
  install_log_rotation
  prepare_slot_log "$log_file"
  iso_now now
  slot_record_get "$slot" version version
  printf '%s bluegreen: starting %s (%s)\n' "$now" "$slot" "$version" >>"$log_file"
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    systemctl enable --quiet "$(slot_unit "$slot")"
    systemctl start "$(slot_unit "$slot")"
    # A slot starts as the standby: the switch makes it live (memory.sh).
    slot_pid "$slot" pid
    set_oom_score_adj "$pid" "$OOM_SCORE_ADJ_IDLE"
    return 0
  fi
  # setsid and no inherited lock descriptor: the app must outlive this deploy without holding
  # its lock or the caller's pipes (SSM waits for every holder of its stdout to close); so must
  # its log writer, whose own output goes nowhere.
  slot_command "$slot" command
  (umask "$APP_UMASK" && exec setsid "${command[@]}" </dev/null > >(log_writer "$log_file" >/dev/null 2>&1) 2>&1 {LOCK_FD}>&- {ENGINE_PIPE_FD}>&- {ENGINE_STDOUT_FD}>&- {ENGINE_STDERR_FD}>&-) &
  pid=$!
  slot_pid_file "$slot" pid_file
  printf '%s\n' "$pid" >"$pid_file"
  set_oom_score_adj "$pid" "$OOM_SCORE_ADJ_IDLE"
}

# SIGTERM, then SIGKILL after the stop timeout.
slot_stop() {
  local slot=$1 pid deadline now pid_file
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    # Once a shutdown has stopped a slot, a 'systemctl stop' does not return until the shutdown
    # is over (seen with Debian 12's systemd 252: the engine was still in it when
    # systemd-shutdown sent its SIGTERM, so it ended without saying what happened, and the reboot
    # took about 10 s longer). systemd stops the slot itself then: only its link goes, so that it
    # does not start at the boot; the boot reads the links afresh, so no reload is asked for.
    if [[ $SLOT_STOPPED_BY_SHUTDOWN == yes ]]; then
      systemctl disable --quiet --no-reload "$(slot_unit "$slot")" 2>/dev/null || true
      return 0
    fi
    systemctl disable --quiet "$(slot_unit "$slot")" || true
    systemctl stop "$(slot_unit "$slot")"
    return 0
  fi
  slot_pid "$slot" pid
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    seconds_to_us "$BLUEGREEN_STOP_TIMEOUT" deadline
    now_us now
    deadline=$((now + deadline))
    while pid_alive "$pid"; do
      now_us now
      if ((now >= deadline)); then
        warn "slot $slot (pid $pid) did not stop within ${BLUEGREEN_STOP_TIMEOUT}s of SIGTERM; sending SIGKILL."
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((now + 5000000))
      fi
      pause 0.01
    done
  fi
  slot_pid_file "$slot" pid_file
  rm -f "$pid_file"
}

# Waits for a freshly started slot: healthy -> 0; exited or timed out -> 1 with SLOT_FAILURE set.
# Until the app's port opens, a tick only checks the port and the process (no fork). From then
# on health is asked at once, then again after a gap that grows with the time since the port
# opened: 1/50 of it, at least a tick and at most the health interval. An app that is ready when
# its port opens (Spring Boot without readiness groups) is caught at once; one that answers DOWN
# for a while (a database, caches to warm) is caught within 2% of that while, where a fixed
# interval cost up to a whole interval. A probe is a request from bash (slot_healthy), so 50
# probes in the first second after the port opens cost the host little; a slow health endpoint
# slows the loop down by itself, one probe at a time.
readonly START_TICK=0.02 MIN_HEALTH_INTERVAL_US=50000 HEALTH_GAP_DIVISOR=50
seconds_to_us "$START_TICK" START_TICK_US
readonly START_TICK_US
SLOT_FAILURE=
SLOT_STOPPED_BY_SHUTDOWN=no
wait_slot_healthy() {
  local slot=$1 timeout_s=$2 deadline interval_us next_probe now port opened_at='' gap
  slot_port "$slot" port
  seconds_to_us "$BLUEGREEN_HEALTH_INTERVAL" interval_us
  ((interval_us >= MIN_HEALTH_INTERVAL_US)) || interval_us=$MIN_HEALTH_INTERVAL_US
  seconds_to_us "$timeout_s" deadline
  now_us now
  deadline=$((now + deadline))
  next_probe=0
  while :; do
    if ! slot_started_alive "$slot"; then
      slot_exit_status "$slot" SLOT_FAILURE
      SLOT_FAILURE="the $slot process exited before it became healthy${SLOT_FAILURE:+ ($SLOT_FAILURE)}"
      host_stopping && SLOT_STOPPED_BY_SHUTDOWN=yes
      return 1
    fi
    now_us now
    if [[ -z $opened_at ]] && port_in_use "$port"; then
      opened_at=$now
      next_probe=$now
    fi
    # A closed port cannot pass a health probe: until it opens, no probe is sent.
    if [[ -n $opened_at ]] && ((now >= next_probe)); then
      slot_healthy "$slot" && return 0
      now_us now
      gap=$(((now - opened_at) / HEALTH_GAP_DIVISOR))
      ((gap >= START_TICK_US)) || gap=$START_TICK_US
      ((gap <= interval_us)) || gap=$interval_us
      next_probe=$((now + gap))
    fi
    if ((now >= deadline)); then
      SLOT_FAILURE="$slot did not answer HTTP 200 with \"status\":\"UP\" on $BLUEGREEN_HEALTH_PATH within ${timeout_s}s"
      return 1
    fi
    pause "$START_TICK"
  done
}

# slot_exit_status SLOT VAR: how a slot's process that is gone ended, e.g. "exit status 1" or
# "killed by signal 9 (KILL)"; empty when that cannot be known. The process runner's app is this
# shell's child, so wait has its status; systemd keeps the main process's.
slot_exit_status() {
  local slot_exit_pid='' slot_exit_code=0 slot_exit_kind slot_exit_signal
  local -n slot_exit_out=$2
  slot_exit_out=''
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    { read -r slot_exit_kind; read -r slot_exit_code; } < <(systemctl show -p ExecMainCode,ExecMainStatus --value "$(slot_unit "$1")" 2>/dev/null || true)
    is_uint "${slot_exit_code:-}" || return 0
    # ExecMainCode is a CLD_* code: 1 exited, 2 killed, 3 dumped core.
    case ${slot_exit_kind:-} in
      1) slot_exit_out="exit status $slot_exit_code" ;;
      2 | 3) slot_exit_signal=$(kill -l "$slot_exit_code" 2>/dev/null || true); slot_exit_out="killed by signal $slot_exit_code${slot_exit_signal:+ ($slot_exit_signal)}" ;;
    esac
    return 0
  fi
  { read -r slot_exit_pid <"$STATE_DIR/slot-$1.pid"; } 2>/dev/null || return 0
  is_uint "$slot_exit_pid" || return 0
  wait "$slot_exit_pid" 2>/dev/null || slot_exit_code=$?
  # 127: not this shell's child (an earlier engine started it), so its status is gone.
  ((slot_exit_code != 127)) || return 0
  if ((slot_exit_code > 128)); then
    slot_exit_signal=$(kill -l "$((slot_exit_code - 128))" 2>/dev/null || true)
    slot_exit_out="killed by signal $((slot_exit_code - 128))${slot_exit_signal:+ ($slot_exit_signal)}"
  else
    slot_exit_out="exit status $slot_exit_code"
  fi
}

# The warm standby across a deploy. A deploy replaces the idle slot's release; until the new one
# is live, the slot's previous release and whether it ran are kept in a file, so that a deploy
# that fails (or is killed) puts the standby back instead of leaving the bad release in its place
# for 'bluegreen rollback' to start again.
standby_file() { put "${2:-}" "$STATE_DIR/slot-$1.standby"; }

# save_standby SLOT: records what SLOT holds before a deploy replaces it; dies when it cannot.
save_standby() {
  local slot=$1 file release version sha running=no bake text
  standby_file "$slot" file
  slot_record_get "$slot" release release
  slot_record_get "$slot" version version
  slot_record_get "$slot" sha256 sha
  slot_running "$slot" && running=yes
  slot_bake_result "$slot" bake
  printf -v text 'release=%s\nversion=%s\nsha256=%s\nrunning=%s\nbake=%s' "$release" "$version" "$sha" "$running" "${bake//$'\n'/ }"
  write_checked "$file" "$text" 0640 ||
    die "$EXIT_UNEXPECTED" "could not record the warm standby before replacing it: $WRITE_FAILURE. Nothing was changed: $slot keeps ${version:-no release} and the live slot keeps serving. Free space in $STATE_DIR, then deploy again."
}

# restore_standby SLOT: puts SLOT back as save_standby found it: its release on record and, if it
# ran, running and healthy again. Always sets STANDBY_NOTE, one sentence for the user; returns 1
# when the standby could not be put back. Written to run where errexit is off (in 'if', in the
# EXIT trap): each step that matters is checked.
STANDBY_NOTE=
restore_standby() {
  local slot=$1 file line release='' version='' sha='' running=no bake='' port record current
  STANDBY_NOTE=
  standby_file "$slot" file
  [[ -f $file ]] || return 0
  while IFS= read -r line; do
    case $line in
      release=*) release=${line#*=} ;;
      version=*) version=${line#*=} ;;
      sha256=*) sha=${line#*=} ;;
      running=*) running=${line#*=} ;;
      bake=*) bake=${line#*=} ;;
    esac
  done <"$file"
  slot_port "$slot" port
  slot_record_get "$slot" release current
  # Killed before it replaced anything: nothing to undo.
  if [[ $current == "$release" ]] && standby_as_saved "$slot" "$running"; then
    rm -f -- "$file"
    STANDBY_NOTE="$slot still holds ${version:-no release} as before."
    return 0
  fi
  log standby "putting $slot back as it was before the deploy: ${version:-no release}${release:+, $([[ $running == yes ]] && printf running || printf 'not running')}"
  slot_stop "$slot"
  clear_bake "$slot"
  if [[ -z $release ]]; then
    slot_record_file "$slot" record
    rm -f -- "$record" "$file"
    STANDBY_NOTE="$slot is empty again, as it was before the deploy, so there is no standby to roll back to."
    return 0
  fi
  if [[ ! -f $release ]]; then
    STANDBY_NOTE="The warm standby could not be put back: its release $release is no longer on disk. $slot runs nothing; deploy the previous release again to have a standby."
    return 1
  fi
  if ! slot_record_set "$slot" "$release" "$version" "$sha"; then
    STANDBY_NOTE="The warm standby could not be put back: $WRITE_FAILURE. Free space in $STATE_DIR, then run 'bluegreen rollback' or deploy again: the next command puts $slot ($version) back first."
    return 1
  fi
  if [[ -n $bake ]] && ! record_bake "$slot" "$bake"; then
    warn "could not record $slot's earlier bake result ($bake) again."
  fi
  if [[ $running != yes ]]; then
    rm -f -- "$file"
    STANDBY_NOTE="$slot holds $version again, not running, as before the deploy; 'bluegreen rollback' starts it and switches to it."
    return 0
  fi
  if port_in_use "$port"; then
    rm -f -- "$file"
    STANDBY_NOTE="The warm standby $slot ($version) is on record again but could not start: port $port is in use by another process ('ss -ltnp sport = :$port'). Stop that process; 'bluegreen rollback' then starts $slot and switches to it."
    return 1
  fi
  slot_start "$slot"
  if ! wait_slot_healthy "$slot" "$BLUEGREEN_HEALTH_TIMEOUT"; then
    if [[ $SLOT_STOPPED_BY_SHUTDOWN == yes ]]; then
      # Its record and its enabled unit stay as restored, so systemd starts it at the boot; the
      # standby file stays too, so that the first operation after the boot checks that it did.
      STANDBY_NOTE="The host began to shut down while the warm standby $slot ($version) started, and systemd stopped it: systemd starts it again at the boot, and the first bluegreen deploy, rollback or switch after the boot checks that it runs."
      return 1
    fi
    slot_stop "$slot"
    rm -f -- "$file"
    STANDBY_NOTE="The warm standby $slot ($version) is on record again but did not start: $SLOT_FAILURE. 'bluegreen rollback' tries to start it again; its log: $(slot_log_file "$slot")."
    return 1
  fi
  rm -f -- "$file"
  STANDBY_NOTE="The warm standby is back: $slot runs $version again on port $port, healthy; 'bluegreen rollback' switches to it."
}

# standby_as_saved SLOT RUNNING: SLOT runs (healthy) when RUNNING is yes, and nothing when no.
standby_as_saved() {
  if [[ $2 == yes ]]; then
    slot_running "$1" && slot_healthy "$1"
  else
    ! slot_started_alive "$1" && ! slot_running "$1"
  fi
}

# A deploy that was killed can leave a standby half-replaced: the first operation after it puts
# it back (unless that deploy's release went live, which makes the other slot the standby).
restore_pending_standbys() {
  local slot file live
  for slot in "${SLOT_NAMES[@]}"; do
    standby_file "$slot" file
    [[ -f $file ]] || continue
    live_slot live
    if [[ $slot == "$live" ]]; then
      rm -f -- "$file"
      continue
    fi
    if restore_standby "$slot"; then
      log standby "$STANDBY_NOTE"
    elif [[ $SLOT_STOPPED_BY_SHUTDOWN == yes ]]; then
      # Going on would start units that systemd stops again, or refuses, during the shutdown.
      die "$EXIT_UNEXPECTED" "$STANDBY_NOTE Nothing else was changed${live:+: $(slot_summary "$live") keeps serving, after the boot too}. Run the $OP_ACTION again once the host is back up."
    else
      warn "$STANDBY_NOTE"
    fi
  done
}

print_log_tail() {
  local slot=$1 log_file
  log_file=$(slot_log_file "$slot")
  [[ -f $log_file ]] || return 0
  printf 'bluegreen: last lines of %s:\n' "$log_file" >&2
  tail -n 25 "$log_file" | sed 's/^/  | /' >&2
}
