#!/usr/bin/env bash
# The script of the stack's SSM Command document: runs one `bluegreen` action on the host.
#
# SSM Agent passes each document parameter as an environment variable SSM_<name>
# (interpolationType ENV_VAR); nothing here is spliced in by the agent, so a parameter value is
# only ever data. The stack fills @@...@@ placeholders at synth time (lib/constructs/deploy-document.ts).
# Exit status: the engine's own (EXIT_CODE_TABLE in lib/contract.ts), of which this script also
# uses 2 for a bad parameter, 3 for a bad engine bundle, and 1 when the host is not ready
# (cloud-init failed or is still running after the wait) or a command failed unexpectedly.

# SC2154: SSM_* come from SSM Agent; require_parameters checks each one before it is read.
# shellcheck disable=SC2154
set -Eeuo pipefail

readonly CLOUD_INIT_WAIT_SECONDS='@@CLOUD_INIT_WAIT_SECONDS@@'
# How long a deploy or rollback waits for the host's deploy lock (DOCUMENT_LOCK_WAIT_SECONDS in
# lib/deploy/timeouts.ts, inside the step's timeout): a CloudFormation deploy that meets a
# Jenkins deploy waits for it instead of failing the stack update.
readonly LOCK_WAIT_SECONDS='@@LOCK_WAIT_SECONDS@@'
# The last entries only: SSM returns the first 24,000 characters of a command's output.
readonly HISTORY_LIMIT='@@HISTORY_LIMIT@@'
# Where the first boot installed the engine; BLUEGREEN_ENGINE_DIR moves it (tests only).
readonly ENGINE_DIR=${BLUEGREEN_ENGINE_DIR:-'@@ENGINE_DIR@@'}
readonly SLOT_UNIT='@@SLOT_UNIT@@'
# The one engine bundle this document installs, fixed by the stack: where it lives and its content
# hash (lib/engine-bundle.ts). A caller may ask for it, never name another: whatever it installs
# runs as root. Both empty: the document installs no engine. A new engine is a new document.
readonly ENGINE_URI='@@ENGINE_URI@@'
readonly ENGINE_HASH='@@ENGINE_HASH@@'
# The engine's numbers for these; test/contract/exit-codes.e2e.test.ts checks them against the table.
readonly EXIT_UNEXPECTED=1
readonly EXIT_USAGE=2
readonly EXIT_BAD_ARTIFACT=3
readonly EXIT_NOTHING_TO_SWITCH_TO=7

log() {
  printf '%s bluegreen-document: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
  local code=$1
  shift
  log "error: $*"
  exit "$code"
}

# Always 1, whatever the failed command's status: a command's own status (systemctl's 5, say)
# must not read as one of the engine's codes. Only main passes a status on: the engine's own.
# shellcheck disable=SC2317 # called by the ERR trap
on_error() {
  local code=$1 line=$2 command=$3
  log "error: unexpected failure at line ${line}, status ${code} from: ${command}"
  exit "$EXIT_UNEXPECTED"
}

# Every parameter must have arrived: an agent without ENV_VAR interpolation sets none of them.
require_parameters() {
  local name variable
  for name in "$@"; do
    variable="SSM_${name}"
    if [[ -z ${!variable+set} ]]; then
      die "$EXIT_USAGE" "parameter '${name}' did not arrive as \$${variable}. SSM Agent 3.3.2746.0 or later is needed (environment-variable interpolation); update it with the AWS-UpdateSSMAgent document."
    fi
  done
}

# The deploy runs only once the first boot has installed the engine and finished its own deploy.
wait_for_cloud_init() {
  if ! command -v cloud-init >/dev/null 2>&1; then
    return 0
  fi
  log "waiting up to ${CLOUD_INIT_WAIT_SECONDS}s for cloud-init to finish"
  local status=0
  timeout "$CLOUD_INIT_WAIT_SECONDS" cloud-init status --wait >/dev/null || status=$?
  case $status in
    # 2: finished with recoverable errors (for example deprecated keys); the set-up still ran.
    0 | 2) return 0 ;;
    124) die "$EXIT_UNEXPECTED" "cloud-init was still running after ${CLOUD_INIT_WAIT_SECONDS}s; nothing was changed. Try again once the instance has finished booting." ;;
    *) die "$EXIT_UNEXPECTED" "cloud-init failed (status ${status}), so the host set-up is incomplete; nothing was changed. Read /var/log/cloud-init-output.log, or replace the instance." ;;
  esac
}

# `aws s3 cp` inside the engine needs a region; SSM Agent's environment has none.
ensure_aws_region() {
  if [[ -n ${AWS_REGION:-} || -n ${AWS_DEFAULT_REGION:-} ]]; then
    return 0
  fi
  local token region
  token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
    http://169.254.169.254/latest/api/token) || return 0
  region=$(curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: ${token}" \
    http://169.254.169.254/latest/meta-data/placement/region) || return 0
  export AWS_DEFAULT_REGION=$region
}

# The engine tree's content hash: lib/engine-bundle.ts computes the same at synth time.
tree_hash() {
  local dir=$1 listing
  listing=$(cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  printf '%s\n' "$listing" | sha256sum | cut -d' ' -f1
}

fetch() {
  local uri=$1 destination=$2
  case $uri in
    s3://*) ensure_aws_region && aws s3 cp --only-show-errors "$uri" "$destination" ;;
    https://*) curl -fsS --retry 3 --max-time 120 --output "$destination" "$uri" ;;
    /*) cp -- "$uri" "$destination" ;;
  esac
}

# A caller may only ask for the stack's own engine bundle, and is told so before anything runs.
check_engine_request() {
  local uri=$SSM_engineUri
  [[ -n $uri ]] || return 0
  [[ -n $ENGINE_URI ]] ||
    die "$EXIT_USAGE" "parameter 'engineUri' is ${uri}, but this document installs no engine (its stack gave it none); nothing was changed. Leave engineUri empty."
  [[ $uri == "$ENGINE_URI" ]] ||
    die "$EXIT_USAGE" "parameter 'engineUri' may only name this stack's engine bundle, ${ENGINE_URI}, not ${uri}; nothing was changed. Leave it empty, or give exactly that; a different engine comes with a stack update."
  [[ $ENGINE_HASH =~ ^[0-9a-f]{64}$ ]] ||
    die "$EXIT_UNEXPECTED" "this document names an engine bundle without a valid content hash ('${ENGINE_HASH}'); nothing was changed. Update the stack (npx cdk deploy)."
}

# The first entry of the unpacked tree that is neither a regular file nor a directory, if any.
first_special_entry() {
  local dir=$1
  (cd "$dir" && find . ! -type f ! -type d -print -quit)
}

ENGINE_WORK=''
# shellcheck disable=SC2317 # called by the EXIT trap
remove_engine_work() {
  [[ -z $ENGINE_WORK ]] || rm -rf "$ENGINE_WORK"
}

# Installs the stack's engine bundle when asked (engineUri) and the host runs another one: the
# first boot installs the engine only once, so without this an engine fix would never reach a
# running host. The new tree must hold only regular files and directories and match the hash
# this document carries before it replaces the old one; any other bundle is refused and the
# installed engine keeps running. Processes already running keep the files they opened (the old
# tree is renamed away, not rewritten).
update_engine() {
  local uri=$ENGINE_URI expected=$ENGINE_HASH current actual special
  [[ -n $SSM_engineUri ]] || return 0
  current=$(tree_hash "$ENGINE_DIR")
  if [[ $current == "$expected" ]]; then
    log "engine ${expected:0:12} is already installed"
    return 0
  fi
  log "updating the engine from ${current:0:12} to ${expected:0:12} (${uri})"
  ENGINE_WORK=$(mktemp -d)
  trap remove_engine_work EXIT
  fetch "$uri" "${ENGINE_WORK}/engine.zip" ||
    die "$EXIT_UNEXPECTED" "could not fetch the engine bundle ${uri}; the installed engine (${current:0:12}) is unchanged."
  unzip -q "${ENGINE_WORK}/engine.zip" -d "${ENGINE_WORK}/engine" ||
    die "$EXIT_BAD_ARTIFACT" "the engine bundle ${uri} is not a zip; the installed engine (${current:0:12}) is unchanged."
  # The hash covers regular files only, and the chmod below and the engine itself would follow a
  # symbolic link out of the tree: anything else is refused, whatever the hash says.
  special=$(first_special_entry "${ENGINE_WORK}/engine")
  [[ -z $special ]] ||
    die "$EXIT_BAD_ARTIFACT" "the engine bundle ${uri} holds ${special#./}, a $(stat -c %F "${ENGINE_WORK}/engine/${special}"); an engine bundle holds only regular files and directories. The installed engine (${current:0:12}) is unchanged. The object there is not the bundle the stack published: find out who changed it, and publish the stack's assets again (npx cdk deploy)."
  actual=$(tree_hash "${ENGINE_WORK}/engine")
  [[ $actual == "$expected" ]] ||
    die "$EXIT_BAD_ARTIFACT" "the engine bundle ${uri} has content hash ${actual}, not the ${expected} this document installs; the installed engine (${current:0:12}) is unchanged. The object there is not the bundle the stack published: find out who changed it, and publish the stack's assets again (npx cdk deploy)."
  # Zip entries do not reliably carry Unix modes.
  chmod -R u=rwX,go=rX "${ENGINE_WORK}/engine"
  chmod 0755 "${ENGINE_WORK}/engine/bin/"*
  rm -rf "${ENGINE_DIR}.new" "${ENGINE_DIR}.old"
  mv "${ENGINE_WORK}/engine" "${ENGINE_DIR}.new"
  mv "$ENGINE_DIR" "${ENGINE_DIR}.old"
  mv "${ENGINE_DIR}.new" "$ENGINE_DIR"
  rm -rf "${ENGINE_DIR}.old"
  local unit="${ENGINE_DIR}/systemd/${SLOT_UNIT}" installed="/etc/systemd/system/${SLOT_UNIT}"
  if [[ -f $unit && -f $installed ]] && ! cmp -s "$unit" "$installed"; then
    install -m 0644 "$unit" "$installed"
    systemctl daemon-reload
    log "installed the new ${SLOT_UNIT}; running slots pick it up at their next start"
  fi
  log "engine ${expected:0:12} installed"
}

# Sets BLUEGREEN_ARGUMENTS for a deploy of the artifact the parameters name.
prepare_deploy() {
  local artifact_uri=$SSM_artifactUri sha256=$SSM_sha256 version=$SSM_version
  [[ -n $artifact_uri ]] || die "$EXIT_USAGE" "action 'deploy' needs the parameter 'artifactUri' (s3://BUCKET/KEY, https://URL or a path on the host)."
  [[ -n $sha256 ]] || die "$EXIT_USAGE" "action 'deploy' needs the parameter 'sha256' (the jar's SHA-256, 64 hex digits), so that the host runs exactly the jar you meant."
  [[ $sha256 =~ ^[0-9a-f]{64}$ ]] || die "$EXIT_USAGE" "parameter 'sha256' must be 64 lower-case hex digits."
  BLUEGREEN_ARGUMENTS=(deploy "$artifact_uri" --sha256 "$sha256")
  if [[ -n $version ]]; then
    BLUEGREEN_ARGUMENTS+=(--version "$version")
  fi
  if [[ $artifact_uri == s3://* ]]; then
    ensure_aws_region
  fi
  # Not the URI: a presigned URL's signature would stay in the SSM output and CloudWatch Logs.
  # The engine names the artifact, with a URL's query hidden, in its own lines.
  log "deploying the jar with sha256 ${sha256:0:12}${version:+ as version ${version}}"
}

main() {
  trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
  require_parameters action artifactUri sha256 version healthTimeout engineUri
  check_engine_request

  local action=$SSM_action health_timeout=$SSM_healthTimeout
  if [[ -n $health_timeout ]]; then
    [[ $health_timeout =~ ^[1-9][0-9]{0,2}$ ]] || die "$EXIT_USAGE" "parameter 'healthTimeout' must be a whole number of seconds from 1 to 999."
    export BLUEGREEN_HEALTH_TIMEOUT=$health_timeout
  fi

  BLUEGREEN_ARGUMENTS=()
  case $action in
    deploy) prepare_deploy ;;
    rollback) BLUEGREEN_ARGUMENTS=(rollback) ;;
    status) BLUEGREEN_ARGUMENTS=(status --json) ;;
    history) BLUEGREEN_ARGUMENTS=(history --json --limit "$HISTORY_LIMIT") ;;
    *) die "$EXIT_USAGE" "unknown action '${action}': expected deploy, rollback, status or history." ;;
  esac
  command -v bluegreen >/dev/null 2>&1 ||
    die "$EXIT_UNEXPECTED" "the bluegreen engine is not on PATH (normally /usr/local/bin/bluegreen): the first boot has not installed it. Nothing was changed."
  # A status or history during boot is still useful; a change waits until the first boot has finished.
  if [[ $action == deploy || $action == rollback ]]; then
    wait_for_cloud_init
    update_engine
    # The engine says in its output when it waited, and for which operation of whom.
    export BLUEGREEN_LOCK_WAIT=$LOCK_WAIT_SECONDS BLUEGREEN_CALLER='the SSM deploy document'
  fi

  # The engine's exit status is the command's result (EXIT_CODE_TABLE in lib/contract.ts).
  local status=0
  bluegreen "${BLUEGREEN_ARGUMENTS[@]}" || status=$?
  # A fleet's rollback names the release recorded before the current one: a host with no standby
  # to switch to (one the Auto Scaling group added boots the recorded release alone) deploys it,
  # so that the rollback reaches every host instead of stopping the roll-out there.
  if [[ $action == rollback && -n $SSM_artifactUri && $status == "$EXIT_NOTHING_TO_SWITCH_TO" ]]; then
    log "no standby to roll back to on this host: deploying the fleet's previous release instead"
    prepare_deploy
    status=0
    bluegreen "${BLUEGREEN_ARGUMENTS[@]}" || status=$?
  fi
  if ((status != 0)); then
    log "bluegreen ${action} failed with exit status ${status}"
    exit "$status"
  fi
  # The last stdout line is the host's state as JSON: what the custom resource reports as the
  # live slot and version (status and history only read).
  if [[ $action == deploy || $action == rollback ]]; then
    bluegreen status --json || true
  fi
  exit 0
}

main "$@"
