# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# Running the two slots: as systemd units on the host, as plain processes locally.
# Sourced, never run.

# The unprivileged user systemd runs the slots as (User= in bluegreen-slot@.service).
readonly SLOT_USER=bluegreen

ensure_slot_user() {
  id -u "$SLOT_USER" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --home-dir "$BLUEGREEN_HOME" --shell /sbin/nologin "$SLOT_USER"
  log init "created the system user $SLOT_USER that runs the slots"
}

slot_log_file() { printf '%s/%s.log' "$BLUEGREEN_LOG_DIR" "$1"; }
slot_pid_file() { printf '%s/slot-%s.pid' "$STATE_DIR" "$1"; }
slot_unit() { printf '%s@%s.service' "$BLUEGREEN_SYSTEMD_UNIT" "$1"; }

# The java command line of a slot, Spring Boot style. Both runners exec exactly this.
exec_slot() {
  local slot=$1 port release java_opts app_args
  port=$(slot_port "$slot")
  release=$(slot_record_get "$slot" release)
  [[ -n $release && -f $release ]] ||
    die "$EXIT_NOTHING_TO_SWITCH" "slot $slot has no release on disk (${release:-none recorded}); deploy one with 'bluegreen deploy ARTIFACT'."
  read -r -a java_opts <<<"$BLUEGREEN_JAVA_OPTS"
  read -r -a app_args <<<"$BLUEGREEN_APP_ARGS"
  exec "$BLUEGREEN_JAVA" "${java_opts[@]}" -jar "$release" \
    "--server.port=$port" --server.address=127.0.0.1 "--spring.profiles.active=$slot" "${app_args[@]}" </dev/null
}

# A process is gone once /proc has no entry or it is a zombie: PID 1 reaps orphans slowly on
# some machines, and waiting for the zombie to disappear would cost every deploy seconds.
pid_alive() {
  local pid=$1 stat
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  { stat=$(<"/proc/$pid/stat"); } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# The recorded pid, but only while it is still this slot's java (pids get reused).
slot_pid() {
  local slot=$1 file pid cmdline port
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    pid=$(systemctl show -p MainPID --value "$(slot_unit "$slot")" 2>/dev/null || true)
    [[ -n $pid && $pid != 0 ]] && printf '%s' "$pid"
    return 0
  fi
  port=$(slot_port "$slot")
  file=$(slot_pid_file "$slot")
  if [[ -f $file ]]; then
    pid=$(<"$file")
    if pid_alive "$pid"; then
      cmdline=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)
      if [[ $cmdline == *"--server.port=$port "* ]]; then
        printf '%s' "$pid"
        return 0
      fi
    fi
  fi
  # A deploy killed between starting a slot and writing its pid file leaves an app that only
  # its command line identifies.
  for pid in $(pgrep -f -- "-jar $RELEASES_DIR/[^ ]+ --server.port=$port( |\$)" || true); do
    if pid_alive "$pid"; then
      printf '%s' "$pid"
      return 0
    fi
  done
  return 0
}

slot_running() {
  local pid
  pid=$(slot_pid "$1")
  [[ -n $pid ]] && pid_alive "$pid"
}

# Like slot_running, but also true in the instant between fork and exec of a slot just started,
# when its command line is not java's yet.
slot_started_alive() {
  local slot=$1 pid
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    systemctl is-active --quiet "$(slot_unit "$slot")"
    return
  fi
  pid=$(<"$(slot_pid_file "$slot")") 2>/dev/null || return 1
  pid_alive "$pid"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# One health probe: HTTP 200 and "status":"UP" in the body.
slot_healthy() {
  local port body status
  port=$(slot_port "$1")
  body=$(curl -sS --max-time 2 -w '\n%{http_code}' "http://127.0.0.1:$port$BLUEGREEN_HEALTH_PATH" 2>/dev/null) || return 1
  status=${body##*$'\n'}
  body=${body%$'\n'*}
  [[ $status == 200 && $body =~ \"status\"[[:space:]]*:[[:space:]]*\"UP\" ]]
}

slot_start() {
  local slot=$1 log_file pid
  log_file=$(slot_log_file "$slot")
  printf '%s bluegreen: starting %s (%s)\n' "$(iso_now)" "$slot" "$(slot_record_get "$slot" version)" >>"$log_file"
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    systemctl enable --quiet "$(slot_unit "$slot")"
    systemctl start "$(slot_unit "$slot")"
    return 0
  fi
  # setsid and no inherited lock descriptor: the app must outlive this deploy without holding
  # its lock or the caller's pipes (SSM waits for every holder of its stdout to close).
  setsid "$BLUEGREEN_SELF" exec-slot "$slot" </dev/null >>"$log_file" 2>&1 {LOCK_FD}>&- &
  pid=$!
  printf '%s\n' "$pid" >"$(slot_pid_file "$slot")"
}

# SIGTERM, then SIGKILL after the stop timeout.
slot_stop() {
  local slot=$1 pid deadline
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    systemctl disable --quiet "$(slot_unit "$slot")" || true
    systemctl stop "$(slot_unit "$slot")"
    return 0
  fi
  pid=$(slot_pid "$slot")
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_us) + $(seconds_to_us "$BLUEGREEN_STOP_TIMEOUT")))
    while pid_alive "$pid"; do
      if (($(now_us) >= deadline)); then
        warn "slot $slot (pid $pid) did not stop within ${BLUEGREEN_STOP_TIMEOUT}s of SIGTERM; sending SIGKILL."
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$(($(now_us) + 5000000))
      fi
      sleep 0.02
    done
  fi
  rm -f "$(slot_pid_file "$slot")"
}

# Waits for a freshly started slot: healthy -> 0; exited or timed out -> 1 with SLOT_FAILURE set.
# Health is asked every health interval, and also at once when the port starts accepting
# connections: an app like Spring Boot opens its port only at the end of its start, so this
# catches it ready within a tick instead of up to a whole interval later.
readonly START_TICK_US=50000
SLOT_FAILURE=
wait_slot_healthy() {
  local slot=$1 timeout_s=$2 deadline interval_us next_probe now port port_was_open=no
  port=$(slot_port "$slot")
  interval_us=$(seconds_to_us "$BLUEGREEN_HEALTH_INTERVAL")
  ((interval_us >= START_TICK_US)) || interval_us=$START_TICK_US
  deadline=$(($(now_us) + $(seconds_to_us "$timeout_s")))
  next_probe=0
  while :; do
    if ! slot_started_alive "$slot"; then
      SLOT_FAILURE="the $slot process exited before it became healthy"
      return 1
    fi
    now=$(now_us)
    if [[ $port_was_open == no ]] && port_in_use "$port"; then
      port_was_open=yes
      next_probe=$now
    fi
    if ((now >= next_probe)); then
      slot_healthy "$slot" && return 0
      next_probe=$(($(now_us) + interval_us))
    fi
    if (($(now_us) >= deadline)); then
      SLOT_FAILURE="$slot did not answer HTTP 200 with \"status\":\"UP\" on $BLUEGREEN_HEALTH_PATH within ${timeout_s}s"
      return 1
    fi
    sleep 0.05
  done
}

print_log_tail() {
  local slot=$1 log_file
  log_file=$(slot_log_file "$slot")
  [[ -f $log_file ]] || return 0
  printf 'bluegreen: last lines of %s:\n' "$log_file" >&2
  tail -n 25 "$log_file" | sed 's/^/  | /' >&2
}
