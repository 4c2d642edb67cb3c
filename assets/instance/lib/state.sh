# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# The deploy lock, per-slot records, the operation journal and the history. Sourced, never run.

readonly SLOT_NAMES=(blue green)

slot_port() {
  case $1 in
    blue) printf '%s' "$BLUEGREEN_BLUE_PORT" ;;
    green) printf '%s' "$BLUEGREEN_GREEN_PORT" ;;
    *) die "$EXIT_USAGE" "unknown slot '$1': the slots are blue and green." ;;
  esac
}

other_slot() {
  case $1 in
    blue) printf 'green' ;;
    green) printf 'blue' ;;
    *) die "$EXIT_UNEXPECTED" "other_slot: unknown slot '$1'" ;;
  esac
}

ensure_dirs() {
  mkdir -p "$RELEASES_DIR" "$STATE_DIR" "$INCOMING_DIR" "$BLUEGREEN_LOG_DIR"
}

iso_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Takes the deploy lock or fails fast. flock is released by the kernel when its holder dies, so
# a killed deploy never blocks the next one; the file's text only says who holds it.
LOCK_FD=
acquire_lock() {
  local action=$1 lock_file=$STATE_DIR/deploy.lock holder pid since held_action
  exec {LOCK_FD}<>"$lock_file"
  if ! flock -n "$LOCK_FD"; then
    holder=$(<"$lock_file")
    read -r pid since held_action <<<"$holder"
    if [[ -n ${pid:-} ]] && kill -0 "$pid" 2>/dev/null; then
      die "$EXIT_LOCKED" "another ${held_action:-operation} is running since ${since:-?} (pid $pid). Nothing was changed. Wait for it to finish ('bluegreen status' shows the result), then run this again."
    fi
    # The holder is gone; a short-lived child it forked (curl, sleep) may still hold the
    # inherited descriptor for a moment.
    flock -w 5 "$LOCK_FD" ||
      die "$EXIT_LOCKED" "the deploy lock $lock_file is still held 5 s after its owner (pid ${pid:-?}) exited. Find the holder with 'fuser $lock_file' and stop it, then run this again."
  fi
  printf '%s %s %s\n' "$$" "$(iso_now)" "$action" >"$lock_file"
}

# Per-slot record: which release the slot runs. KEY=VALUE, parsed, never sourced.
slot_record_file() { printf '%s/slot-%s.env' "$STATE_DIR" "$1"; }

# slot_record_get SLOT KEY -> value or empty
slot_record_get() {
  local file key=$2 line
  file=$(slot_record_file "$1")
  [[ -f $file ]] || return 0
  while IFS= read -r line; do
    if [[ $line == "$key="* ]]; then
      printf '%s' "${line#*=}"
      return 0
    fi
  done <"$file"
}

# slot_record_set SLOT release version sha256
slot_record_set() {
  local slot=$1 file tmp
  file=$(slot_record_file "$slot")
  tmp=$file.tmp.$$
  {
    printf 'release=%s\n' "$2"
    printf 'version=%s\n' "$3"
    printf 'sha256=%s\n' "$4"
    printf 'updated=%s\n' "$(iso_now)"
  } >"$tmp"
  mv -f "$tmp" "$file"
}

# The operation journal: written when an operation starts and removed when it ends, so that
# the next one can tell (and record) that a previous one was killed half-way.
OP_FILE_WRITTEN=
op_begin() {
  local action=$1 detail=$2
  printf '%s\t%s\t%s\t%s\n' "$$" "$(iso_now)" "$action" "$detail" >"$STATE_DIR/operation"
  OP_FILE_WRITTEN=1
}

op_end() {
  if [[ -n $OP_FILE_WRITTEN ]]; then
    rm -f "$STATE_DIR/operation"
    OP_FILE_WRITTEN=
  fi
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
  local action=$1 from=$2 to=$3 version=$4 sha=$5 result=$6 total_us=$7 app_us=$8 message=$9
  local line
  line=$(printf '{"at":%s,"action":%s,"from":%s,"to":%s,"version":%s,"sha256":%s,"result":%s,"seconds":%s,"appSeconds":%s,"message":%s}' \
    "$(json_str "$(iso_now)")" "$(json_str "$action")" "$(json_str_or_null "$from")" \
    "$(json_str_or_null "$to")" "$(json_str_or_null "$version")" "$(json_str_or_null "$sha")" \
    "$(json_str "$result")" "$(us_to_json_seconds "$total_us")" "$(us_to_json_seconds "$app_us")" \
    "$(json_str "$message")")
  # One write of one line: appends of this size are atomic, so readers never see half a record.
  printf '%s\n' "$line" >>"$HISTORY_FILE"
}

us_to_json_seconds() {
  local us=$1
  if [[ -z $us || $us == 0 ]]; then printf 'null'; else printf '%d.%03d' "$((us / 1000000))" "$(((us % 1000000) / 1000))"; fi
}
