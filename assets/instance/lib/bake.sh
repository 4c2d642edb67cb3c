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

# answer_counts OFFSET PORT -> "TOTAL FIVE_XX": the answers Nginx logged for the upstream on
# PORT since OFFSET. Nginx flushes its access log buffer every second, so the last second of
# a window may not be counted yet.
answer_counts() {
  local offset=$1 port=$2 file
  file=$(access_log_file)
  [[ -f $file ]] || { printf '0 0'; return 0; }
  tail -c +"$((offset + 1))" "$file" | awk -v upstream="upstream=127.0.0.1:$port" '
    index($0, upstream) {
      if (match($0, /" [0-9][0-9][0-9] /)) {
        total++
        if (substr($0, RSTART + 2, 1) == "5") errors++
      }
    }
    END { printf "%d %d", total, errors }'
}

bake_marker_file() { printf '%s/slot-%s.bake' "$STATE_DIR" "$1"; }

# The last bake of a slot's release: "passed: ..." or "failed: ...".
slot_bake_result() {
  local file
  file=$(bake_marker_file "$1")
  [[ -f $file ]] && printf '%s' "$(<"$file")"
  return 0
}

record_bake() {
  printf '%s\n' "$2" >"$(bake_marker_file "$1")"
}

clear_bake() {
  local file
  file=$(bake_marker_file "$1")
  [[ ! -e $file ]] || rm -f "$file"
}

# watch_slot SLOT OFFSET SECONDS: 0 when SLOT behaved for SECONDS; 1 with BAKE_FAILURE set.
# BAKE_SUMMARY says what was seen either way.
BAKE_FAILURE=
BAKE_SUMMARY=
watch_slot() {
  local slot=$1 offset=$2 seconds=$3 port started deadline now elapsed total errors percent health_failures=0
  port=$(slot_port "$slot")
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
    read -r total errors <<<"$(answer_counts "$offset" "$port")"
    percent=$((total > 0 ? errors * 100 / total : 0))
    BAKE_SUMMARY="$errors of $total answers were 5xx in ${elapsed} s"
    # errors/total > max%, in integers: errors * 100 > max * total (max may have decimals).
    if ((total >= BLUEGREEN_BAKE_MIN_REQUESTS && total > 0)) &&
      awk -v e="$errors" -v t="$total" -v max="$BLUEGREEN_BAKE_MAX_5XX_PERCENT" 'BEGIN { exit !(e * 100 > max * t) }'; then
      BAKE_FAILURE="$errors of $total answers were 5xx ($percent %) within ${elapsed} s of the switch"
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
  printf 'rolls back above %s %% 5xx over at least %s answers, on a failed health check, or if the process dies' \
    "$BLUEGREEN_BAKE_MAX_5XX_PERCENT" "$BLUEGREEN_BAKE_MIN_REQUESTS"
}

# judge_slot SLOT PREVIOUS OFFSET SECONDS WHEN: returns when SLOT behaved; otherwise makes
# PREVIOUS serve everything again, stops SLOT (its release stays on disk) and dies with
# EXIT_ROLLED_BACK and one line that says what was seen.
judge_slot() {
  local slot=$1 previous=$2 offset=$3 seconds=$4 when=$5 reason
  watch_slot "$slot" "$offset" "$seconds" && return 0
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
