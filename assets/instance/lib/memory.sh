# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# The app slots' share of the host's memory, and who the kernel's OOM killer picks first.
# The stack sizes both from the instance type (lib/memory-budget.ts) and the first boot writes
# them into the configuration: BLUEGREEN_SLOT_HEAP_MIB (the JVM's -Xmx) and
# BLUEGREEN_SLOT_MEMORY_MIB (the slot's cgroup cap, systemd's MemoryMax=). Sourced, never run.

# oom_score_adj (OOM_SCORE_ADJ in lib/memory-budget.ts; test/contract compares them): a slot
# that is not live (the standby, or a release still starting) goes before Jenkins; the live
# slot goes last. The unit starts every slot at the live value, so a live slot that systemd
# restarts after a crash is protected at once; the engine raises the others.
readonly OOM_SCORE_ADJ_LIVE=-900
readonly OOM_SCORE_ADJ_IDLE=500

# slot_memory_opts ARRAY: the heap flag for the slot's java command line, into ARRAY (empty
# when no heap is configured: the JVM's default). It goes before BLUEGREEN_JAVA_OPTS, whose own
# -Xmx, if any, wins (java takes the last one).
slot_memory_opts() {
  local -n slot_memory_opts_out=$1
  slot_memory_opts_out=()
  [[ -z $BLUEGREEN_SLOT_HEAP_MIB ]] || slot_memory_opts_out=("-Xmx${BLUEGREEN_SLOT_HEAP_MIB}m")
}

validate_memory_config() {
  local key
  for key in BLUEGREEN_SLOT_HEAP_MIB BLUEGREEN_SLOT_MEMORY_MIB; do
    [[ -z ${!key} ]] || { is_uint "${!key}" && ((10#${!key} >= 16)); } ||
      die "$EXIT_USAGE" "$key=${!key} is not a size in MiB (a whole number, at least 16). Nothing was changed. Fix it in $BLUEGREEN_CONF, or empty it for the JVM's own default."
  done
  if [[ -n $BLUEGREEN_SLOT_HEAP_MIB && -n $BLUEGREEN_SLOT_MEMORY_MIB ]] && ((10#$BLUEGREEN_SLOT_HEAP_MIB >= 10#$BLUEGREEN_SLOT_MEMORY_MIB)); then
    die "$EXIT_USAGE" "BLUEGREEN_SLOT_HEAP_MIB=$BLUEGREEN_SLOT_HEAP_MIB does not fit in BLUEGREEN_SLOT_MEMORY_MIB=$BLUEGREEN_SLOT_MEMORY_MIB: a JVM needs memory beside its heap, so the cap would kill the app. Nothing was changed. Raise the cap or lower the heap in $BLUEGREEN_CONF."
  fi
}

# The systemd runner's cap: a drop-in for the slot unit template, so both slots get it.
slot_memory_drop_in() {
  printf '%s/%s@.service.d/50-bluegreen-memory.conf' "$BLUEGREEN_SYSTEMD_DIR" "$BLUEGREEN_SYSTEMD_UNIT"
}

render_slot_memory_drop_in() {
  local file
  [[ $BLUEGREEN_RUNNER == systemd ]] || return 0
  file=$(slot_memory_drop_in)
  if [[ -z $BLUEGREEN_SLOT_MEMORY_MIB ]]; then
    [[ ! -e $file ]] || { rm -f "$file" && systemctl daemon-reload; }
    return 0
  fi
  mkdir -p "${file%/*}"
  write_file_atomically "$file" "# Written by 'bluegreen init' from BLUEGREEN_SLOT_MEMORY_MIB in $BLUEGREEN_CONF.
[Service]
MemoryMax=${BLUEGREEN_SLOT_MEMORY_MIB}M"
  systemctl daemon-reload
  log init "each slot may use ${BLUEGREEN_SLOT_MEMORY_MIB} MiB (heap ${BLUEGREEN_SLOT_HEAP_MIB:-the JVM default})"
}

# set_oom_score_adj PID VALUE: best effort; a process that is gone has nothing to protect.
# Lowering a value needs CAP_SYS_RESOURCE, which a container may lack: there the lowest a
# process may go is the engine's own value, so VALUE below that becomes that.
set_oom_score_adj() {
  local pid=$1 value=$2 own
  [[ -n $pid ]] || return 0
  { printf '%s\n' "$value" >"/proc/$pid/oom_score_adj"; } 2>/dev/null && return 0
  read -r own <"/proc/$BASHPID/oom_score_adj"
  ((value < own)) && { printf '%s\n' "$own" >"/proc/$pid/oom_score_adj"; } 2>/dev/null && return 0
  warn "could not set oom_score_adj $value for pid $pid; the kernel may pick it out of order when memory runs out."
}

# rank_slots_for_oom LIVE: the live slot last in the OOM killer's line, the other before it.
rank_slots_for_oom() {
  local live=$1 slot pid
  for slot in blue green; do
    slot_pid "$slot" pid
    [[ -n $pid ]] || continue
    if [[ $slot == "$live" ]]; then
      set_oom_score_adj "$pid" "$OOM_SCORE_ADJ_LIVE"
    else
      set_oom_score_adj "$pid" "$OOM_SCORE_ADJ_IDLE"
    fi
  done
}
