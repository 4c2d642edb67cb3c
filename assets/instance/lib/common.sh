# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# Logging, errors, timing, JSON and configuration for bluegreen. Sourced, never run.

# Exit codes: EXIT_CODE_TABLE in lib/contract.ts is the one table (number, name, meaning);
# test/contract/exit-codes.e2e.test.ts fails when these differ from it in a name or a number.
readonly EXIT_OK=0
readonly EXIT_UNEXPECTED=1
readonly EXIT_USAGE=2
readonly EXIT_BAD_ARTIFACT=3
readonly EXIT_LOCKED=4
readonly EXIT_UNHEALTHY=5
readonly EXIT_NGINX_REJECTED=6
readonly EXIT_NOTHING_TO_SWITCH_TO=7
readonly EXIT_ROLLED_BACK=8

# The engine's umask (bin/bluegreen sets it): what it creates is for root alone, with no access
# for other users and no group write. What another user must reach is opened up by name: the
# slot user's files (share_with_slots), Nginx's files and directories.
readonly ENGINE_UMASK=0027

# Replacement text in ${var//pattern/text} is data: '&' must not stand for the match (bash 5.2).
shopt -u patsub_replacement 2>/dev/null || true

# Small helpers print their result, or assign it to the variable named by their last, optional
# argument: a $(...) costs a fork, and on a busy 2-core host every fork in a poll loop or a
# progress line shows up in the deploy time. Their locals carry the helper's name, so that they
# never shadow the caller's variable.

# put VAR VALUE: assigns VALUE to VAR, or prints it when VAR is empty.
put() {
  if [[ -n $1 ]]; then printf -v "$1" '%s' "$2"; else printf '%s' "$2"; fi
}

# now_us [VAR]: microseconds on a clock that only moves forward, for every deadline and duration
# (wall-clock times come from iso_now). Not EPOCHREALTIME: that is the wall clock, which chrony
# steps at first boot, and a step would cut a health wait, a bake or a stop timeout short or
# stretch it by the step. /proc/uptime is the kernel's CLOCK_BOOTTIME, in centiseconds; reading
# it is a redirection, not a fork, so poll loops can ask often.
now_us() {
  local now_us_uptime now_us_rest
  read -r now_us_uptime now_us_rest </proc/uptime
  now_us_uptime=${now_us_uptime/./}
  put "${1:-}" "$((10#$now_us_uptime * 10000))"
}

# read_file PATH VAR: PATH's text into VAR, without trailing newlines, as $(<PATH) gives it;
# returns 1 when PATH cannot be read. The engine never uses $(<PATH): bash 5.2 (Amazon Linux
# 2023's, Debian 12's) exits an errexit shell with status 1 when PATH cannot be opened, even in
# an 'if' or after '||', without running the ERR trap, so a file that vanished at that moment
# (a /proc entry, a pid file) ended a deploy with no message at all.
read_file() {
  local read_file_fd
  local -n read_file_out=$2
  read_file_out=''
  { exec {read_file_fd}<"$1"; } 2>/dev/null || return 1
  IFS= read -r -d '' -u "$read_file_fd" read_file_out || true
  exec {read_file_fd}<&-
  while [[ $read_file_out == *$'\n' ]]; do read_file_out=${read_file_out%$'\n'}; done
}

# fmt_seconds US [VAR]: a microsecond duration as seconds with two decimals: 1234567 -> 1.23
fmt_seconds() {
  local fmt_seconds_us=$1
  printf -v fmt_seconds_us '%d.%02d' "$((fmt_seconds_us / 1000000))" "$(((fmt_seconds_us % 1000000) / 10000))"
  put "${2:-}" "$fmt_seconds_us"
}

# The engine's own pipe, opened once here, that only exit_chosen writes to. pause SECONDS waits
# on it: sleep(1) without its fork and exec, for poll loops (a read that times out). The apps the
# engine starts do not inherit it (slot_start, exec_slot).
exec {ENGINE_PIPE_FD}<> <(:)

# The engine's own stdout and stderr, kept aside for its EXIT trap: a signal (SIGTERM, Ctrl-C)
# runs the trap inside whatever command the engine was in, with that command's redirections,
# and many of its quick checks send stderr to /dev/null: the message that says what became of
# the deploy must still reach the caller. The apps the engine starts do not inherit them.
# (Not inside a '2>/dev/null' group: that would keep /dev/null as the engine's stderr.)
exec {ENGINE_STDOUT_FD}>&1 || exec {ENGINE_STDOUT_FD}>/dev/null
exec {ENGINE_STDERR_FD}>&2 || exec {ENGINE_STDERR_FD}>/dev/null
pause() {
  read -r -t "$1" -u "$ENGINE_PIPE_FD" _ || true
}

# loopback_get PORT PATH [body]: one HTTP/1.0 GET to 127.0.0.1:PORT, made by bash itself over
# /dev/tcp: no fork, so the start loop and the switch's proof can ask every few ms, where a curl
# cost 2 to 15 ms under load. HTTP/1.0, so a body ends where the server closes (never chunked).
# Sets LOOPBACK_STATUS (empty when nothing answered) and LOOPBACK_HEADERS (the header lines, CR
# stripped, one a line), and with "body" LOOPBACK_BODY for a 200 (Content-Length bytes, or to the
# close). Each read waits at most LOOPBACK_READ_TIMEOUT s: a stuck server costs that per line.
readonly LOOPBACK_READ_TIMEOUT=2
LOOPBACK_STATUS=
LOOPBACK_HEADERS=
LOOPBACK_BODY=
loopback_get() {
  local port=$1 path=$2 want=${3:-} fd line request length='' LC_ALL=C
  LOOPBACK_STATUS='' LOOPBACK_HEADERS='' LOOPBACK_BODY=''
  printf -v request 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nAccept: application/json\r\n\r\n' "$path" "$port"
  { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  # echo writes the request in one write(); printf would send a segment per line.
  if echo -n "$request" 2>/dev/null 1>&"$fd" && read -r -t "$LOOPBACK_READ_TIMEOUT" -u "$fd" line; then
    [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]] && LOOPBACK_STATUS=${BASH_REMATCH[1]}
    while read -r -t "$LOOPBACK_READ_TIMEOUT" -u "$fd" line; do
      line=${line%$'\r'}
      [[ -n $line ]] || break
      LOOPBACK_HEADERS+=$line$'\n'
      [[ ${line,,} =~ ^content-length:\ *([0-9]{1,7})$ ]] && length=$((10#${BASH_REMATCH[1]}))
    done
    if [[ $want == body && $LOOPBACK_STATUS == 200 ]]; then
      if [[ -n $length ]]; then
        read -r -N "$length" -t "$LOOPBACK_READ_TIMEOUT" -u "$fd" LOOPBACK_BODY || true
      else
        read -r -d '' -t "$LOOPBACK_READ_TIMEOUT" -u "$fd" LOOPBACK_BODY || true
      fi
    fi
  fi
  exec {fd}>&-
}

now_us OP_STARTED_US

# Progress goes to stdout, one line per phase, so that the SSM console and CI logs show it.
log() {
  local phase=$1 log_now
  shift
  now_us log_now
  fmt_seconds "$((log_now - OP_STARTED_US))" log_now
  printf 'bluegreen [%6ss] %-8s %s\n' "$log_now" "$phase" "$*"
}

warn() {
  printf 'bluegreen: warning: %s\n' "$*" >&2
}

# die CODE MESSAGE...: what went wrong, what was kept safe, and what to do, on stderr; then
# exits with CODE. A die() inside $(...) only ends that subshell: the note file carries its
# message to the EXIT trap, which records it in the history, and exit_chosen its CODE to on_error.
ERROR_NOTE_FILE=
die() {
  local code=$1
  shift
  printf 'bluegreen: error: %s\n' "$*" >&2
  if [[ -n $ERROR_NOTE_FILE ]]; then
    { printf '%s\n' "$*" >"$ERROR_NOTE_FILE"; } 2>/dev/null || true
  fi
  exit_chosen "$code"
}

# exit_chosen CODE: exits with a status the engine chose. The ERR trap of a $(...)'s parent sees
# only the subshell's status, which may as well be a failed command's (systemctl exits 5 for a
# unit it does not know, useradd 4 for a taken UID): so a subshell first writes CODE to the
# engine's pipe, where chosen_status finds it. No fork: printf is a builtin, BASHPID a variable.
exit_chosen() {
  ((BASHPID == $$)) || printf '%s\n' "$1" >&"$ENGINE_PIPE_FD"
  exit "$1"
}

# chosen_status CODE: true when CODE is the status a die() in a $(...) subshell just chose: the
# newest code in the pipe. Reads the pipe empty. A code whose failure a caller handled (as in
# 'if x=$(...)', which the engine never does around a die) stays there until the next
# chosen_status or pause, so only an unrelated failure with that very status in between could
# be taken for it.
chosen_status() {
  local chosen_status_code=''
  while read -r -t 0 -u "$ENGINE_PIPE_FD"; do
    read -r -u "$ENGINE_PIPE_FD" chosen_status_code
  done
  [[ $chosen_status_code == "$1" ]]
}

# default_release_label SHA256 [VAR]: the label of a release deployed without --version. The
# same rule as defaultReleaseLabel in lib/contract.ts; test/contract/release-label.test.ts checks it.
readonly DEFAULT_RELEASE_LABEL_PREFIX=sha256-
default_release_label() {
  put "${2:-}" "$DEFAULT_RELEASE_LABEL_PREFIX${1:0:12}"
}

# json_str STRING [VAR]: STRING escaped for JSON, with quotes.
json_str() {
  local json_str_s=$1
  json_str_s=${json_str_s//\\/\\\\}
  json_str_s=${json_str_s//\"/\\\"}
  json_str_s=${json_str_s//$'\n'/\\n}
  json_str_s=${json_str_s//$'\r'/\\r}
  json_str_s=${json_str_s//$'\t'/\\t}
  json_str_s=${json_str_s//[$'\001'-$'\037']/}
  put "${2:-}" "\"$json_str_s\""
}

# json_str_or_null STRING [VAR]: a JSON value for an optional string: null when empty.
json_str_or_null() {
  if [[ -n $1 ]]; then json_str "$1" "${2:-}"; else put "${2:-}" null; fi
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

# Every key the configuration file may set, with its default. Keys are documented in the
# README; an unknown key in the file is an error, because a typo would otherwise be ignored.
# BLUEGREEN_SUDO_ARTIFACT_ROOT is the directory the sudoers rule (assets/jenkins/sudoers) names;
# test/instance/host-security.e2e.test.ts fails when the two differ.
readonly CONFIG_DEFAULTS='BLUEGREEN_BLUE_PORT=8081
BLUEGREEN_GREEN_PORT=8082
BLUEGREEN_HEALTH_PATH=/actuator/health
BLUEGREEN_HEALTH_TIMEOUT=120
BLUEGREEN_HEALTH_INTERVAL=0.5
BLUEGREEN_DRAIN_TIMEOUT=30
BLUEGREEN_STOP_TIMEOUT=30
BLUEGREEN_LOCK_WAIT=0
BLUEGREEN_JAVA=java
BLUEGREEN_JAVA_OPTS=
BLUEGREEN_SLOT_HEAP_MIB=
BLUEGREEN_SLOT_MEMORY_MIB=
BLUEGREEN_APP_ARGS=
BLUEGREEN_KEEP_RELEASES=5
BLUEGREEN_HOME=/var/lib/bluegreen
BLUEGREEN_LOG_DIR=/var/log/bluegreen
BLUEGREEN_RUNNER=systemd
BLUEGREEN_SYSTEMD_UNIT=bluegreen-slot
BLUEGREEN_SYSTEMD_DIR=/etc/systemd/system
BLUEGREEN_NGINX=nginx
BLUEGREEN_NGINX_MAIN_CONF=
BLUEGREEN_NGINX_SITE_CONF=/etc/nginx/conf.d/bluegreen.conf
BLUEGREEN_NGINX_INCLUDE=/etc/nginx/bluegreen/live-upstream.conf
BLUEGREEN_NGINX_PID_FILE=/run/nginx.pid
BLUEGREEN_NGINX_LISTEN=80
BLUEGREEN_NGINX_USER=nginx
BLUEGREEN_NGINX_LOG_DIR=/var/log/nginx
BLUEGREEN_NGINX_TEMP_DIR=/var/lib/nginx/tmp
BLUEGREEN_NGINX_MIME_TYPES=/etc/nginx/mime.types
BLUEGREEN_NGINX_VERIFY_TIMEOUT=10
BLUEGREEN_NGINX_KEEPALIVE_MIN_TIMEOUT=1s
BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=
BLUEGREEN_NGINX_TLS_CERT=
BLUEGREEN_NGINX_TLS_KEY=
BLUEGREEN_NGINX_TLS_LISTEN=443
BLUEGREEN_BAKE_SECONDS=10
BLUEGREEN_BAKE_MAX_5XX_PERCENT=5
BLUEGREEN_BAKE_MIN_REQUESTS=20
BLUEGREEN_CANARY_PERCENT=0
BLUEGREEN_CANARY_SECONDS=30
BLUEGREEN_WARMUP_REQUESTS=0
BLUEGREEN_WARMUP_PATH=
BLUEGREEN_WARMUP_CONCURRENCY=4
BLUEGREEN_SUDO_ARTIFACT_ROOT=/var/lib/jenkins-agent/workspace'

config_defaults() {
  printf '%s\n' "$CONFIG_DEFAULTS"
}

# Reads KEY=VALUE lines from the file; an environment variable of the same name wins.
# The file is parsed, not sourced: it is data, and a stray command in it must not run as root.
load_config_file() {
  local file=$1 line key value lineno=0
  local -A known=() from_env=()
  while IFS='=' read -r key _; do
    known[$key]=1
    [[ -n ${!key+set} ]] && from_env[$key]=1
  done <<<"$CONFIG_DEFAULTS"
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ ! $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      die "$EXIT_USAGE" "$file:$lineno is not KEY=VALUE: '$line'. Fix the line or remove it."
    fi
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    if [[ -z ${known[$key]:-} ]]; then
      die "$EXIT_USAGE" "$file:$lineno sets unknown key $key. The keys are listed in the project's docs/engine.md (section Configuration)."
    fi
    # A later line wins over an earlier one, the environment over both.
    [[ -n ${from_env[$key]:-} ]] || printf -v "$key" '%s' "$value"
  done <"$file"
}

load_config() {
  local conf=${BLUEGREEN_CONF:-/etc/bluegreen/bluegreen.conf} key value
  if [[ -f $conf ]]; then
    load_config_file "$conf"
  elif [[ -n ${BLUEGREEN_CONF:-} ]]; then
    die "$EXIT_USAGE" "BLUEGREEN_CONF names $conf, which does not exist. Point it at the configuration file, or unset it to use /etc/bluegreen/bluegreen.conf."
  fi
  while IFS='=' read -r key value; do
    if [[ -z ${!key+set} ]]; then printf -v "$key" '%s' "$value"; fi
    export "${key?}"
  done <<<"$CONFIG_DEFAULTS"
  validate_config
  derive_paths
}

validate_config() {
  local key
  for key in BLUEGREEN_BLUE_PORT BLUEGREEN_GREEN_PORT BLUEGREEN_NGINX_LISTEN BLUEGREEN_NGINX_TLS_LISTEN; do
    if ! is_uint "${!key}" || ((10#${!key} < 1 || 10#${!key} > 65535)); then
      die "$EXIT_USAGE" "$key must be a TCP port (1-65535), got '${!key}'."
    fi
  done
  if ((BLUEGREEN_BLUE_PORT == BLUEGREEN_GREEN_PORT)); then
    die "$EXIT_USAGE" "BLUEGREEN_BLUE_PORT and BLUEGREEN_GREEN_PORT must differ, both are $BLUEGREEN_BLUE_PORT."
  fi
  for key in BLUEGREEN_HEALTH_TIMEOUT BLUEGREEN_HEALTH_INTERVAL BLUEGREEN_DRAIN_TIMEOUT \
    BLUEGREEN_STOP_TIMEOUT BLUEGREEN_LOCK_WAIT BLUEGREEN_NGINX_VERIFY_TIMEOUT BLUEGREEN_BAKE_SECONDS \
    BLUEGREEN_BAKE_MAX_5XX_PERCENT BLUEGREEN_CANARY_SECONDS; do
    is_number "${!key}" || die "$EXIT_USAGE" "$key must be a number of seconds, got '${!key}'."
  done
  is_uint "$BLUEGREEN_BAKE_MIN_REQUESTS" ||
    die "$EXIT_USAGE" "BLUEGREEN_BAKE_MIN_REQUESTS must be a whole number, got '$BLUEGREEN_BAKE_MIN_REQUESTS'."
  if ! is_uint "$BLUEGREEN_CANARY_PERCENT" || ((10#$BLUEGREEN_CANARY_PERCENT > 99)); then
    die "$EXIT_USAGE" "BLUEGREEN_CANARY_PERCENT must be a whole number from 0 (off) to 99, got '$BLUEGREEN_CANARY_PERCENT'."
  fi
  if ! is_uint "$BLUEGREEN_KEEP_RELEASES" || ((BLUEGREEN_KEEP_RELEASES < 2)); then
    die "$EXIT_USAGE" "BLUEGREEN_KEEP_RELEASES must be a whole number of at least 2 (the live and the standby release), got '$BLUEGREEN_KEEP_RELEASES'."
  fi
  if ! is_uint "$BLUEGREEN_WARMUP_REQUESTS" || ((10#$BLUEGREEN_WARMUP_REQUESTS > 100000)); then
    die "$EXIT_USAGE" "BLUEGREEN_WARMUP_REQUESTS must be a whole number from 0 (off) to 100000, got '$BLUEGREEN_WARMUP_REQUESTS'."
  fi
  if ! is_uint "$BLUEGREEN_WARMUP_CONCURRENCY" || ((10#$BLUEGREEN_WARMUP_CONCURRENCY < 1 || 10#$BLUEGREEN_WARMUP_CONCURRENCY > 64)); then
    die "$EXIT_USAGE" "BLUEGREEN_WARMUP_CONCURRENCY must be a whole number from 1 to 64, got '$BLUEGREEN_WARMUP_CONCURRENCY'."
  fi
  [[ -z $BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT || $BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT =~ ^[0-9]{1,6}(ms|s|m)?$ ]] ||
    die "$EXIT_USAGE" "BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT must be empty (Nginx's 65s) or an Nginx time such as 0, 75s or 2m, got '$BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT'."
  [[ -z $BLUEGREEN_WARMUP_PATH || $BLUEGREEN_WARMUP_PATH =~ ^/[A-Za-z0-9/._~-]*$ ]] ||
    die "$EXIT_USAGE" "BLUEGREEN_WARMUP_PATH must be empty (the health path) or a path of letters, digits and / . _ ~ - starting with '/', got '$BLUEGREEN_WARMUP_PATH'."
  [[ $BLUEGREEN_SUDO_ARTIFACT_ROOT == /* ]] ||
    die "$EXIT_USAGE" "BLUEGREEN_SUDO_ARTIFACT_ROOT must be an absolute path (the directory the sudoers rule lets a deploy through sudo take jars from), got '$BLUEGREEN_SUDO_ARTIFACT_ROOT'."
  [[ $BLUEGREEN_HEALTH_PATH == /* ]] ||
    die "$EXIT_USAGE" "BLUEGREEN_HEALTH_PATH must start with '/', got '$BLUEGREEN_HEALTH_PATH'."
  [[ $BLUEGREEN_HEALTH_PATH =~ ^[A-Za-z0-9/._~-]+$ ]] ||
    die "$EXIT_USAGE" "BLUEGREEN_HEALTH_PATH may hold only letters, digits and / . _ ~ -, got '$BLUEGREEN_HEALTH_PATH'."
  if [[ -n $BLUEGREEN_NGINX_TLS_CERT && -z $BLUEGREEN_NGINX_TLS_KEY ]] || [[ -z $BLUEGREEN_NGINX_TLS_CERT && -n $BLUEGREEN_NGINX_TLS_KEY ]]; then
    die "$EXIT_USAGE" "BLUEGREEN_NGINX_TLS_CERT and BLUEGREEN_NGINX_TLS_KEY go together: set both (TLS on port $BLUEGREEN_NGINX_TLS_LISTEN) or neither."
  fi
  case $BLUEGREEN_RUNNER in
    systemd | process) ;;
    *) die "$EXIT_USAGE" "BLUEGREEN_RUNNER must be 'systemd' (on the host) or 'process' (local), got '$BLUEGREEN_RUNNER'." ;;
  esac
}

derive_paths() {
  RELEASES_DIR=$BLUEGREEN_HOME/releases
  STATE_DIR=$BLUEGREEN_HOME/state
  INCOMING_DIR=$BLUEGREEN_HOME/incoming
  HISTORY_FILE=$BLUEGREEN_HOME/history.jsonl
  LOCK_FILE=$STATE_DIR/deploy.lock
  NGINX_URL=http://127.0.0.1:$BLUEGREEN_NGINX_LISTEN
  read -r -a NGINX_CMD <<<"$BLUEGREEN_NGINX"
}

# Whole seconds, rounded up, from a number of seconds such as 0.5 or 120.
ceil_seconds() {
  local us
  us=$(seconds_to_us "$1")
  printf '%s' "$(((us + 999999) / 1000000))"
}

# seconds_to_us SECONDS [VAR]: seconds (possibly fractional) to microseconds.
seconds_to_us() {
  local seconds_to_us_whole seconds_to_us_frac
  seconds_to_us_whole=${1%%.*}
  seconds_to_us_frac=${1#"$seconds_to_us_whole"}
  seconds_to_us_frac=${seconds_to_us_frac#.}000000
  put "${2:-}" "$((10#$seconds_to_us_whole * 1000000 + 10#${seconds_to_us_frac:0:6}))"
}
