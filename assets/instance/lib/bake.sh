# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# The bake: after a switch, watch the new slot's real answers for a while and switch back to
# the warm standby when it misbehaves. A health check only proves that the app started.
# Sourced, never run.

readonly BAKE_TICK=0.25

access_log_file() { printf '%s/bluegreen-access.log' "$BLUEGREEN_NGINX_LOG_DIR"; }

# Bytes in the access log now: where a bake starts counting.
access_log_offset() {
  local file
  file=$(access_log_file)
  if [[ -f $file ]]; then stat -c %s "$file"; else printf '0'; fi
}

# The awk program that counts a slot's answers in access-log lines: those whose last upstream
# (the one that answered, when Nginx tried the live slot and then fell back to the standby) is
# ADDR, and not older than CUTOFF (local time as Nginx logs it) when given.
#
# The answers are judged by kind of request, its method and path without the query ("GET
# /fail"): right after a switch the mix of requests shifts (a cold JVM answers the app's real
# work more slowly than a request it refuses at once, so a client whose requests fail on any
# release makes up more of them), and one share over all answers would then rise with the mix
# alone. With MODE=table it prints "TOTAL FIVE_XX", then a line "<TAB>KIND<TAB>TOTAL<TAB>FIVE_XX"
# for each kind of request with at least MIN answers, and one for the rest ("(other)") when they
# make MIN together: the rates a release can be judged against. Otherwise it reads such lines
# first, as the input starts with them (log lines never start with a tab; Nginx escapes control
# characters in $request), and prints "TOTAL FIVE_XX EXPECTED": EXPECTED is how many 5xx the
# same answers would have held at those rates (a kind not in the table at the rate of "(other)",
# none when that is missing either).
# shellcheck disable=SC2016 # awk's own $0, not the shell's
readonly ANSWER_COUNTS_AWK='
  /^\t/ { split($0, f, "\t"); if (f[3] > 0) rate[f[2]] = f[4] / f[3]; next }
  {
    if (cutoff != "" && substr($0, index($0, "[") + 1, 19) < cutoff) next
    u = index($0, " upstream="); s = index($0, " upstream_status=")
    if (u == 0 || s <= u) next
    n = split(substr($0, u + 10, s - u - 10), tried, ", ")
    if (tried[n] != addr) next
    if (!match($0, /" [0-9][0-9][0-9] /)) next
    failed = substr($0, RSTART + 2, 1) == "5"
    total++
    errors += failed
    q = index($0, "\"")
    split(substr($0, q + 1, RSTART - q - 1), request, " ")
    kind = request[1] " " request[2]
    sub(/\?.*/, "", kind)
    if (mode == "table") { kinds[kind]++; kind_errors[kind] += failed }
    else if (kind in rate) expected += rate[kind]
    else if ("(other)" in rate) expected += rate["(other)"]
  }
  END {
    if (mode != "table") { printf "%d %d %.2f", total, errors, expected; exit }
    printf "%d %d\n", total, errors
    for (kind in kinds) {
      if (kinds[kind] >= min) printf "\t%s\t%d\t%d\n", kind, kinds[kind], kind_errors[kind]
      else { other += kinds[kind]; other_errors += kind_errors[kind] }
    }
    if (other >= min && other > 0) printf "\t(other)\t%d\t%d\n", other, other_errors
  }'

# answer_counts OFFSET PORT [RATES] -> "TOTAL FIVE_XX EXPECTED": the answers Nginx logged for the
# upstream on PORT since OFFSET, and the 5xx expected among them at RATES (baseline_counts's
# table). Nginx flushes its access log buffer every second, so the last second of a window may
# not be counted yet.
answer_counts() {
  local offset=$1 port=$2 rates=${3:-} file
  file=$(access_log_file)
  [[ -f $file ]] || { printf '0 0 0'; return 0; }
  { [[ -z $rates ]] || printf '%s\n' "$rates"; tail -c +"$((offset + 1))" "$file"; } |
    awk -v addr="127.0.0.1:$port" -v cutoff='' -v mode=count "$ANSWER_COUNTS_AWK"
}

# How far back before a switch the log is read for the previous slot's answers: enough for a
# busy bake window, without reading a large log from its start.
readonly BASELINE_MAX_BYTES=$((32 * 1024 * 1024))

# baseline_counts OFFSET PORT SECONDS -> "TOTAL FIVE_XX" and the table of rates by kind of
# request (ANSWER_COUNTS_AWK): what the upstream on PORT answered in the SECONDS before OFFSET
# (the switch), the same clients over a window as long as the bake.
baseline_counts() {
  local offset=$1 port=$2 seconds=$3 file cutoff whole from
  file=$(access_log_file)
  if [[ ! -f $file ]] || ((offset == 0)); then
    printf '0 0'
    return 0
  fi
  whole=$(ceil_seconds "$seconds")
  # The log's times are the wall clock's, so the cutoff is too.
  printf -v cutoff '%(%Y-%m-%dT%H:%M:%S)T' "$((EPOCHSECONDS - whole))"
  # dd seeks to the start of the window and stops at the switch: the log around it is never read.
  from=$((offset > BASELINE_MAX_BYTES ? offset - BASELINE_MAX_BYTES : 0))
  dd if="$file" iflag=skip_bytes,count_bytes skip="$from" count="$((offset - from))" bs=1M status=none |
    awk -v addr="127.0.0.1:$port" -v cutoff="$cutoff" -v mode=table -v min="$BLUEGREEN_BAKE_MIN_REQUESTS" "$ANSWER_COUNTS_AWK"
}

# bake_marker_file SLOT [VAR]
bake_marker_file() { put "${2:-}" "$STATE_DIR/slot-$1.bake"; }

# slot_bake_result SLOT [VAR]: the last bake of a slot's release: "passed: ..." or "failed: ...".
slot_bake_result() {
  local slot_bake_result_file slot_bake_result_text=''
  bake_marker_file "$1" slot_bake_result_file
  read_file "$slot_bake_result_file" slot_bake_result_text || slot_bake_result_text=''
  put "${2:-}" "$slot_bake_result_text"
}

record_bake() {
  local file
  bake_marker_file "$1" file
  printf '%s\n' "$2" >"$file"
}

clear_bake() {
  local file
  bake_marker_file "$1" file
  [[ ! -e $file ]] || rm -f "$file"
}

# watch_slot SLOT OFFSET SECONDS PREVIOUS: 0 when SLOT behaved for SECONDS; 1 with BAKE_FAILURE
# set. BAKE_SUMMARY says what was seen either way. Its 5xx are judged against PREVIOUS's over the
# SECONDS before the switch, kind of request by kind of request: a client whose requests fail on
# any release (a broken one, or one that attacks) makes both fail, and must not roll a good
# release back, however its share of the traffic moves. Below the minimum number of answers
# there, the previous release counts as having had none.
BAKE_FAILURE=
BAKE_SUMMARY=
watch_slot() {
  local slot=$1 offset=$2 seconds=$3 previous=${4:-} port started deadline now elapsed total errors expected percent health_failures=0
  local base_total=0 base_errors=0 base_percent=0 base_text='' baseline='' rates='' expected_text=''
  port=$(slot_port "$slot")
  if [[ -n $previous ]]; then
    baseline=$(baseline_counts "$offset" "$(slot_port "$previous")" "$seconds")
    read -r base_total base_errors <<<"${baseline%%$'\n'*}"
    if ((base_total >= BLUEGREEN_BAKE_MIN_REQUESTS && base_total > 0)); then
      [[ $baseline != *$'\n'* ]] || rates=${baseline#*$'\n'}
      base_percent=$(awk -v e="$base_errors" -v t="$base_total" 'BEGIN { printf "%.1f", e * 100 / t }')
      base_text=", against $base_errors of $base_total ($base_percent %) from $previous in the ${seconds} s before the switch"
    else
      base_text=", and $previous had too few answers before the switch ($base_total) to compare with"
    fi
  fi
  now_us started
  seconds_to_us "$seconds" deadline
  deadline=$((started + deadline))
  while :; do
    now_us now
    fmt_seconds "$((now - started))" elapsed
    if ! slot_running "$slot"; then
      BAKE_FAILURE="the $slot process exited ${elapsed} s after the switch"
      return 1
    fi
    # Two failed probes in a row: one slow answer on a busy host is not a broken release.
    if slot_healthy "$slot"; then
      health_failures=0
    else
      health_failures=$((health_failures + 1))
      if ((health_failures >= 2)); then
        BAKE_FAILURE="$slot's health check failed ${elapsed} s after the switch"
        return 1
      fi
    fi
    read -r total errors expected <<<"$(answer_counts "$offset" "$port" "$rates")"
    percent=$((total > 0 ? errors * 100 / total : 0))
    [[ -z $rates ]] || expected_text="; at $previous's rates for the same kinds of request, ${expected%.*} were expected"
    if ((total == 0)); then
      BAKE_SUMMARY="saw no traffic: $slot answered no requests in ${elapsed} s, so only its health checks were judged"
    else
      BAKE_SUMMARY="$errors of $total answers were 5xx in ${elapsed} s$base_text$expected_text"
    fi
    # The 5xx beyond those expected at the previous release's rates, by kind of request, above the
    # allowed share (max may have decimals). Without rates by kind, the previous overall share.
    if ((total >= BLUEGREEN_BAKE_MIN_REQUESTS && total > 0)) &&
      awk -v e="$errors" -v t="$total" -v max="$BLUEGREEN_BAKE_MAX_5XX_PERCENT" -v base="$base_percent" -v x="$expected" -v by_kind="${rates:+1}" \
        'BEGIN { if (by_kind) exit !((e - x) * 100 > max * t); exit !(e * 100 > (max + base) * t) }'; then
      BAKE_FAILURE="$errors of $total answers were 5xx ($percent %) within ${elapsed} s of the switch$base_text$expected_text"
      return 1
    fi
    ((now < deadline)) || return 0
    pause "$BAKE_TICK"
  done
}

# bake SLOT PREVIOUS OFFSET: watches SLOT after the full switch for the bake time.
bake() {
  local slot=$1 previous=$2 offset=$3
  log bake "watching $(slot_summary "$slot") for ${BLUEGREEN_BAKE_SECONDS}s ($(watch_rules))"
  judge_slot "$slot" "$previous" "$offset" "$BLUEGREEN_BAKE_SECONDS" ''
  record_bake "$slot" "passed: $BAKE_SUMMARY"
  log bake "passed: $BAKE_SUMMARY"
}

# canary SLOT LIVE OFFSET: sends the canary share of requests to SLOT for the canary time,
# under the same watch, before the full switch. LIVE keeps the rest.
canary() {
  local slot=$1 live=$2 offset=$3
  log canary "sending ${BLUEGREEN_CANARY_PERCENT} % of new requests to $(slot_summary "$slot") for ${BLUEGREEN_CANARY_SECONDS}s, the rest to $(slot_summary "$live") ($(watch_rules))"
  if ! switch_nginx_to "$live" "$slot" "$((10#$BLUEGREEN_CANARY_PERCENT))"; then
    slot_stop "$slot"
    die "$EXIT_NGINX_REJECTED" "$SWITCH_FAILURE"
  fi
  judge_slot "$slot" "$live" "$offset" "$BLUEGREEN_CANARY_SECONDS" ' during the canary'
  log canary "passed: $BAKE_SUMMARY"
}

watch_rules() {
  printf 'rolls back when its 5xx share is more than %s points above what the previous release answered the same kinds of request before the switch, over at least %s answers; on a failed health check; or if the process dies' \
    "$BLUEGREEN_BAKE_MAX_5XX_PERCENT" "$BLUEGREEN_BAKE_MIN_REQUESTS"
}

# judge_slot SLOT PREVIOUS OFFSET SECONDS WHEN: returns when SLOT behaved; otherwise makes
# PREVIOUS serve everything again, stops SLOT (its release stays on disk) and dies with
# EXIT_ROLLED_BACK and one line that says what was seen.
judge_slot() {
  local slot=$1 previous=$2 offset=$3 seconds=$4 when=$5 reason
  watch_slot "$slot" "$offset" "$seconds" "$previous" && return 0
  reason=$BAKE_FAILURE
  record_bake "$slot" "failed: $reason"
  OP_FAILURE_RESULT=rolled-back
  if [[ -z $previous ]] || ! slot_running "$previous" || ! slot_healthy "$previous"; then
    die "$EXIT_ROLLED_BACK" "$reason, but there is no healthy standby to roll back to${previous:+ ($previous is not running and healthy)}, so $(slot_summary "$slot") stays live. Deploy a fixed release."
  fi
  log rollback "$reason: switching back to $(slot_summary "$previous")"
  if ! switch_nginx_to "$previous"; then
    die "$EXIT_NGINX_REJECTED" "$reason, and switching back to $previous failed: $SWITCH_FAILURE"
  fi
  log rollback "Nginx sends every request to $previous again; stopping $slot once old workers are done with it"
  wait_for_old_workers
  slot_stop "$slot"
  die "$EXIT_ROLLED_BACK" "rolled back$when: $reason. $(slot_summary "$previous") is live again; the bad release stays in $(dirname "$(slot_record_get "$slot" release)") and its log in $(slot_log_file "$slot")."
}
