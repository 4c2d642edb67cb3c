# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# The deploy lock, per-slot records, the operation journal and the history. Sourced, never run.

readonly SLOT_NAMES=(blue green)

# slot_port SLOT [VAR]
slot_port() {
  case $1 in
    blue) put "${2:-}" "$BLUEGREEN_BLUE_PORT" ;;
    green) put "${2:-}" "$BLUEGREEN_GREEN_PORT" ;;
    *) die "$EXIT_USAGE" "unknown slot '$1': the slots are blue and green." ;;
  esac
}

# other_slot SLOT [VAR]
other_slot() {
  case $1 in
    blue) put "${2:-}" green ;;
    green) put "${2:-}" blue ;;
    *) die "$EXIT_UNEXPECTED" "other_slot: unknown slot '$1'" ;;
  esac
}

# The engine's files are root's. Another local user who could open the deploy lock, even
# read-only, could hold it with flock and block every deploy and rollback (CloudFormation's too);
# the history, the slot records, the releases and the slots' logs are no one else's business
# either. So 'other' gets no access to any of them, and the slot user (the systemd runner's app)
# only the way to its slot record and its release jar, through their group (share_with_slots):
# enough for 'bluegreen exec-slot' and the app, not to list the state, read the history or take
# the lock. Modes are set on every operation, not only at creation, so that the first operation
# of a new engine closes what an earlier one left open. The log directory itself is left as it
# is (it may be shared), but for letting the slot user in (share_log_dir); the slots' logs in it
# are closed.
ensure_dirs() {
  local slot log
  local -a private=("$INCOMING_DIR" "$LOCK_FILE" "$HISTORY_FILE")
  [[ -d $RELEASES_DIR && -d $STATE_DIR && -d $INCOMING_DIR && -d $BLUEGREEN_LOG_DIR ]] ||
    mkdir -p "$RELEASES_DIR" "$STATE_DIR" "$INCOMING_DIR" "$BLUEGREEN_LOG_DIR"
  : >>"$LOCK_FILE"
  : >>"$HISTORY_FILE"
  for slot in "${SLOT_NAMES[@]}"; do
    slot_log_file "$slot" log
    [[ ! -f $log ]] || private+=("$log")
  done
  chmod u=rwx,g=rx,o= "$BLUEGREEN_HOME" "$RELEASES_DIR"
  chmod u=rwx,g=x,o= "$STATE_DIR"
  chmod go= "${private[@]}"
  if [[ $BLUEGREEN_RUNNER == systemd ]]; then
    ensure_slot_user
    share_with_slots "$BLUEGREEN_HOME" "$RELEASES_DIR" "$STATE_DIR"
    share_log_dir
  fi
}

# iso_now [VAR]: the UTC time, e.g. 2026-11-25T16:42:46Z (bash's printf, not a date(1) fork).
iso_now() {
  local iso_now_text
  TZ=UTC0 printf -v iso_now_text '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  put "${1:-}" "$iso_now_text"
}

# lock_caller [VAR]: who runs this operation, for the lock file: BLUEGREEN_CALLER when the caller
# names itself (the SSM document does), else the user behind sudo, else this user.
lock_caller() {
  local lock_caller_who=${BLUEGREEN_CALLER:-}
  if [[ -z $lock_caller_who && -n ${SUDO_USER:-} ]]; then
    lock_caller_who="$SUDO_USER through sudo"
  fi
  if [[ -z $lock_caller_who ]]; then
    lock_caller_who=${USER:-}
    [[ -n $lock_caller_who ]] || lock_caller_who="uid $EUID"
  fi
  put "${1:-}" "$lock_caller_who"
}

# Takes the deploy lock. flock is released by the kernel when its holder dies, so a killed deploy
# never blocks the next one; the file's text only says who holds it: "PID SINCE ACTION", a tab,
# then what and for whom. While another operation holds it, this fails fast (a person at a
# terminal can try again), or with BLUEGREEN_LOCK_WAIT > 0 waits that many seconds for it: the
# SSM document sets it, so that a CloudFormation deploy or rollback that meets a Jenkins deploy
# waits instead of failing the stack update. The wait fits in the document's execution timeout
# (lib/deploy/timeouts.ts).
LOCK_FD=
acquire_lock() {
  local action=$1 detail=${2:-} lock_file=$LOCK_FILE holder pid since held_action about now who started took wait_us
  exec {LOCK_FD}<>"$lock_file"
  if ! flock -n "$LOCK_FD"; then
    read_file "$lock_file" holder || holder=''
    about=${holder#*$'\t'}
    [[ $about != "$holder" ]] || about=''
    read -r pid since held_action <<<"${holder%%$'\t'*}"
    if [[ -n ${pid:-} ]] && kill -0 "$pid" 2>/dev/null; then
      seconds_to_us "$BLUEGREEN_LOCK_WAIT" wait_us
      if ((wait_us == 0)); then
        die "$EXIT_LOCKED" "another ${held_action:-operation} is running since ${since:-?} (pid $pid)${about:+ $about}. Nothing was changed. Wait for it to finish ('bluegreen status' shows the result), then run this again."
      fi
      log lock "another ${held_action:-operation} holds the deploy lock since ${since:-?} (pid $pid)${about:+ $about}; waiting up to ${BLUEGREEN_LOCK_WAIT}s for it to finish"
      now_us started
      if ! flock -w "$BLUEGREEN_LOCK_WAIT" "$LOCK_FD"; then
        die "$EXIT_LOCKED" "another ${held_action:-operation} (pid $pid, since ${since:-?})${about:+ $about} still held the deploy lock after this $action waited ${BLUEGREEN_LOCK_WAIT}s for it. Nothing was changed. See what it is doing with 'bluegreen status'; once it has finished, run this again."
      fi
      now_us now
      fmt_seconds "$((now - started))" took
      log lock "waited ${took}s for the ${held_action:-operation} (pid $pid)${about:+ $about}"
    else
      # The holder is gone; a short-lived child it forked (curl, sleep) may still hold the
      # inherited descriptor for a moment.
      flock -w 5 "$LOCK_FD" ||
        die "$EXIT_LOCKED" "the deploy lock $lock_file is still held 5 s after its owner (pid ${pid:-?}) exited. Find the holder with 'fuser $lock_file' and stop it, then run this again."
    fi
  fi
  iso_now now
  lock_caller who
  printf '%s %s %s\t%s\n' "$$" "$now" "$action" "${detail:+for $detail, }started by $who" >"$lock_file"
}

# Per-slot record: which release the slot runs. KEY=VALUE, parsed, never sourced.
slot_record_file() { put "${2:-}" "$STATE_DIR/slot-$1.env"; }

# slot_record_get SLOT KEY [VAR] -> value or empty
slot_record_get() {
  local slot_record_file slot_record_line slot_record_value=''
  slot_record_file "$1" slot_record_file
  if [[ -f $slot_record_file ]]; then
    while IFS= read -r slot_record_line; do
      if [[ $slot_record_line == "$2="* ]]; then
        slot_record_value=${slot_record_line#*=}
        break
      fi
    done <"$slot_record_file"
  fi
  put "${3:-}" "$slot_record_value"
}

# slot_record_set SLOT release version sha256: returns 1 with WRITE_FAILURE set when the record
# could not be written whole; the old record then stays as it was.
slot_record_set() {
  local slot=$1 file now text
  slot_record_file "$slot" file
  iso_now now
  printf -v text 'release=%s\nversion=%s\nsha256=%s\nupdated=%s' "$2" "$3" "$4" "$now"
  # 'bluegreen exec-slot' reads it as the slot user.
  write_checked "$file" "$text" 0640 share_with_slots
}

# write_checked DEST TEXT [MODE [HOOK]]: TEXT and a newline into DEST through a temporary file
# that is read back before the rename, so that DEST is either what it was or all of TEXT, never
# a file cut short by a full disk. Every step is checked here, not left to errexit: callers run
# it inside 'if !' and '||', where bash does not stop on a failed command. HOOK (a command) is
# run on the temporary file before the rename. On failure returns 1 with WRITE_FAILURE set and
# removes the temporary file.
WRITE_FAILURE=
write_checked() {
  local dest=$1 text=$2 mode=${3:-0644} hook=${4:-} tmp written='' error file_umask
  tmp=$dest.tmp.$$
  TEMP_FILES+=("$tmp")
  if [[ ! -d ${dest%/*} ]] && ! error=$(mkdir -p -- "${dest%/*}" 2>&1); then
    WRITE_FAILURE="could not create ${dest%/*}: ${error:-mkdir failed}"
    return 1
  fi
  # A switch writes several files: the mode comes from the umask the file is created with, and
  # the write is done in this shell, so that only a failure forks (for the error's text).
  [[ ! -e $tmp ]] || rm -f -- "$tmp"
  printf -v file_umask '%04o' "$((~8#$mode & 8#0777))"
  umask "$file_umask"
  if ! { printf '%s\n' "$text" >"$tmp"; } 2>/dev/null; then
    umask "$ENGINE_UMASK"
    error=$({ printf '%s\n' "$text" >"$tmp"; } 2>&1) || true
    rm -f -- "$tmp" 2>/dev/null
    WRITE_FAILURE="could not write $tmp: ${error##*: }$(disk_full_note "${dest%/*}")"
    return 1
  fi
  umask "$ENGINE_UMASK"
  { IFS= read -r -d '' written <"$tmp"; } 2>/dev/null || true
  if [[ $written != "$text"$'\n' ]]; then
    rm -f -- "$tmp" 2>/dev/null
    WRITE_FAILURE="$tmp did not read back as written (${#written} of $((${#text} + 1)) bytes)$(disk_full_note "${dest%/*}")"
    return 1
  fi
  if [[ -n $hook ]] && ! "$hook" "$tmp" 2>/dev/null; then
    error=$("$hook" "$tmp" 2>&1) || true
    rm -f -- "$tmp" 2>/dev/null
    WRITE_FAILURE="could not prepare $tmp ($hook): ${error:-it failed}"
    return 1
  fi
  if ! error=$(mv -f -- "$tmp" "$dest" 2>&1); then
    rm -f -- "$tmp" 2>/dev/null
    WRITE_FAILURE="could not put $dest in place: ${error:-mv failed}"
    return 1
  fi
}

# disk_full_note DIR: " (the file system of DIR is full: ...)" when it has less than 64 KiB or
# fewer than 16 inodes free, else nothing: the cause a person must fix, said in the message.
disk_full_note() {
  local blocks block_size inodes
  read -r blocks block_size inodes < <(stat -f -c '%a %S %d' -- "$1" 2>/dev/null) || return 0
  is_uint "${blocks:-}" && is_uint "${block_size:-}" && is_uint "${inodes:-}" || return 0
  if ((blocks * block_size < 65536)); then
    printf ' (the file system of %s is full: %s bytes free)' "$1" "$((blocks * block_size))"
  elif ((inodes < 16)); then
    printf ' (the file system of %s is full: %s inodes free)' "$1" "$inodes"
  fi
}

# The operation journal: written when an operation starts and removed when it ends, so that
# the next one can tell (and record) that a previous one was killed half-way.
OP_FILE_WRITTEN=
op_begin() {
  local action=$1 detail=$2 now
  iso_now now
  printf '%s\t%s\t%s\t%s\n' "$$" "$now" "$action" "$detail" >"$STATE_DIR/operation"
  OP_FILE_WRITTEN=1
}

# op_end [FILE...]: removes the journal, and the FILEs with it in the same rm (a fork saved).
op_end() {
  local -a files=("$@")
  [[ -n $OP_FILE_WRITTEN ]] && files+=("$STATE_DIR/operation")
  ((${#files[@]} == 0)) || rm -f -- "${files[@]}"
  OP_FILE_WRITTEN=
}

# Called with the lock held: a journal left behind belongs to an operation that was killed.
INTERRUPTED_OPERATION=
record_interrupted_operation() {
  local file=$STATE_DIR/operation pid started action detail
  [[ -f $file ]] || return 0
  INTERRUPTED_OPERATION=1
  IFS=$'\t' read -r pid started action detail <"$file" || true
  warn "the previous ${action:-operation} (pid ${pid:-?}, started ${started:-?}) was interrupted before it finished; checking that Nginx and the slots agree before going on."
  history_append "${action:-unknown}" "" "" "${detail:-}" "" interrupted 0 0 \
    "interrupted (pid ${pid:-?} stopped before it finished; started ${started:-?})"
  rm -f "$file"
}

# history_append ACTION FROM TO VERSION SHA RESULT SECONDS_US APP_US MESSAGE
history_append() {
  local at action from to version sha result seconds app_seconds message line
  iso_now at
  json_str "$1" action
  json_str_or_null "$2" from
  json_str_or_null "$3" to
  json_str_or_null "$4" version
  json_str_or_null "$5" sha
  json_str "$6" result
  us_to_json_seconds "$7" seconds
  us_to_json_seconds "$8" app_seconds
  json_str "$9" message
  printf -v line '{"at":"%s","action":%s,"from":%s,"to":%s,"version":%s,"sha256":%s,"result":%s,"seconds":%s,"appSeconds":%s,"message":%s}' \
    "$at" "$action" "$from" "$to" "$version" "$sha" "$result" "$seconds" "$app_seconds" "$message"
  # One write of one line: appends of this size are atomic, so readers never see half a record.
  # A full disk fails the write (the caller decides what that means), and may leave a partial
  # line behind it: cut back to where the file ended, so the history stays one object a line.
  local size=0 error bytes
  { size=$(stat -c %s -- "$HISTORY_FILE"); } 2>/dev/null || size=0
  # The write itself in this shell: only a failure pays for a $(...) to learn the error.
  if ! { printf '%s\n' "$line" >>"$HISTORY_FILE"; } 2>/dev/null; then
    truncate -s "$size" -- "$HISTORY_FILE" 2>/dev/null
    error=$({ : >>"$HISTORY_FILE"; } 2>&1) || true
    WRITE_FAILURE="could not append to $HISTORY_FILE${error:+: ${error##*: }}$(disk_full_note "${HISTORY_FILE%/*}")"
    return 1
  fi
  byte_length "$line" bytes
  trim_history "$((size + bytes + 1))"
}

# byte_length STRING VAR: STRING's length in bytes, not characters.
byte_length() {
  local LC_ALL=C
  printf -v "$2" '%d' "${#1}"
}

# trim_history SIZE: SIZE is the history's size in bytes after the entry just appended.
# The history lives on the root volume, which the host shares with Jenkins: past HISTORY_MAX_BYTES
# it keeps its newest HISTORY_KEEP entries (far more than 'history' and the document show), put
# in place by a rename, so that a reader sees the old file or the new one, never half of one. On a
# full disk the trim is skipped (the untrimmed history is whole) and tried again at the next entry.
readonly HISTORY_KEEP=1000 HISTORY_MAX_BYTES=$((1024 * 1024))
trim_history() {
  local size=$1 tmp
  ((size > HISTORY_MAX_BYTES)) || return 0
  tmp=$HISTORY_FILE.tmp.$$
  if ! { tail -n "$HISTORY_KEEP" "$HISTORY_FILE" >"$tmp" && chmod go= "$tmp" && mv -f "$tmp" "$HISTORY_FILE"; } 2>/dev/null; then
    rm -f -- "$tmp"
  fi
  return 0
}

# us_to_json_seconds US [VAR]: microseconds as JSON seconds with three decimals, or null.
us_to_json_seconds() {
  local us_to_json_seconds_us=$1
  if [[ -z $us_to_json_seconds_us || $us_to_json_seconds_us == 0 ]]; then
    put "${2:-}" null
  else
    printf -v us_to_json_seconds_us '%d.%03d' "$((us_to_json_seconds_us / 1000000))" "$(((us_to_json_seconds_us % 1000000) / 1000))"
    put "${2:-}" "$us_to_json_seconds_us"
  fi
}
