#!/bin/bash
# First boot of a blue/green host (Amazon Linux 2023), run once by cloud-init as root.
#
# HOST_ROLE: single (Nginx, the engine, the first release, Jenkins as code), fleet (an Auto
# Scaling group host: no Jenkins; deploys the release the fleet runs) or jenkins (the fleet's
# Jenkins alone: no engine, Nginx or app). Then it tells CloudFormation (cfn-signal) whether it
# worked. Output goes to /var/log/cloud-init-output.log; no secret value is written there.
#
# The stack fills the @@...@@ placeholders at synth time (lib/constructs/bluegreen-host.ts).
# What changes from release to release (the engine bundle, the first artifact) is not in here
# but in the SSM parameter FIRST_RELEASE_PARAMETER: CloudFormation stops and starts an instance
# whose user data changes, so user data holds only what stays the same for the host's life.
set -Eeuo pipefail

readonly STACK_NAME='@@STACK_NAME@@'
readonly REGION='@@REGION@@'
readonly SIGNAL_RESOURCE='@@SIGNAL_RESOURCE@@'
readonly FIRST_RELEASE_PARAMETER='@@FIRST_RELEASE_PARAMETER@@'
readonly ENGINE_DIR='@@ENGINE_DIR@@'
readonly ENGINE_COMMAND='@@ENGINE_COMMAND@@'
readonly ENGINE_CONFIG='@@ENGINE_CONFIG@@'
readonly SLOT_UNIT='@@SLOT_UNIT@@'
readonly SITE_PORT='@@SITE_PORT@@'
readonly JENKINS_SETTINGS_PARAMETER='@@JENKINS_SETTINGS_PARAMETER@@'
readonly JENKINS_TOOLS_DIR='@@JENKINS_TOOLS_DIR@@'
readonly HOST_ROLE='@@HOST_ROLE@@'
readonly FLEET_RELEASE_PARAMETER='@@FLEET_RELEASE_PARAMETER@@'
readonly METADATA_GUARD_URI='@@METADATA_GUARD_URI@@'
readonly METADATA_USERS='@@METADATA_USERS@@'

readonly CFN_SIGNAL=/opt/aws/bin/cfn-signal
# Jenkins' LTS repo (its .repo names the key), pinned: a new LTS may need a new Java; it uses 21, the app 17.
readonly JENKINS_REPO_FILE_URL=https://pkg.jenkins.io/rpm-stable/jenkins.repo
readonly JENKINS_PACKAGE=jenkins-2.580.3
readonly APP_JAVA_PACKAGE=java-17-amazon-corretto-headless
readonly JENKINS_JAVA_PACKAGE=java-21-amazon-corretto-headless
# What Jenkins' builds need: git for checkouts, a JDK 17 for './gradlew build'.
readonly BUILD_PACKAGES=(git java-17-amazon-corretto-devel)
# The fleet's Jenkins runs the operator command with Amazon Linux 2023's Node.js 22 (the AWS SDK
# for JavaScript v3 supports Node.js 20 until January 2027); the single host's Jenkins does not.
readonly FLEET_NODE_PACKAGE=nodejs22
# Jenkins' settings from the stack (names of secrets, never their values).
readonly JENKINS_SETTINGS_FILE=/etc/bluegreen-jenkins/settings
# t3.small has 2 GiB: Jenkins plus two app JVMs during a switch need somewhere to spill.
readonly SWAP_FILE=/swapfile
readonly SWAP_MIB=1024
# How many releases recorded during its own deploys a fleet host follows; past that the
# roll-out's catch-up deploy reaches it.
readonly FLEET_CATCH_UP_DEPLOYS=3
readonly METADATA_GUARD=/usr/local/sbin/bluegreen-imds-guard

# Set from FIRST_RELEASE_PARAMETER by read_first_release.
ENGINE_URI=''
ARTIFACT_URI=''
ARTIFACT_SHA256=''
ARTIFACT_VERSION=''
HEALTH_TIMEOUT=''
# Optional: the Secrets Manager secret holding Nginx's TLS certificate and key.
TLS_SECRET=''
# BLUEGREEN_* lines for the engine's configuration (the slots' memory budget).
ENGINE_SETTINGS=''
readonly TLS_DIR=/etc/bluegreen/tls

log() {
  printf '%s bluegreen-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

signal_cloudformation() {
  local exit_code=$1 reason=$2
  "$CFN_SIGNAL" --exit-code "$exit_code" --reason "$reason" \
    --stack "$STACK_NAME" --resource "$SIGNAL_RESOURCE" --region "$REGION"
}

# A fresh instance's network or mirror may not be up yet: 5 tries.
RETRY_FAILED=''
retry() {
  local try
  for try in 1 2 3 4; do
    "$@" && return 0
    log "warning: try ${try} of '$*' failed" >&2
    sleep $((try * 15))
  done
  "$@" || { local status=$? && RETRY_FAILED="$*" && return "$status"; }
}

# Stack events show a signal's unique id, not its reason: the id says what failed (64 characters
# at most). Without cfn-signal (its install failed) the image's AWS CLI signals.
signal_failure() {
  local id=${1//[^A-Za-z0-9._:-]/-}
  id=${id:0:64}
  { [[ -x $CFN_SIGNAL ]] && "$CFN_SIGNAL" --exit-code 1 --id "$id" --stack "$STACK_NAME" --resource "$SIGNAL_RESOURCE" --region "$REGION"; } ||
    aws cloudformation signal-resource --region "$REGION" --stack-name "$STACK_NAME" \
      --logical-resource-id "$SIGNAL_RESOURCE" --unique-id "$id" --status FAILURE
}

# shellcheck disable=SC2317 # called by the ERR trap
on_error() {
  local code=$1 command=${RETRY_FAILED:-$3}
  trap - ERR
  # In a $(...), the failure is the boot's when the assignment fails: signal once, from there.
  ((BASH_SUBSHELL == 0)) || exit "$code"
  log "error: exit ${code} at line $2: ${command}"
  signal_failure "${FUNCNAME[1]:-main}-line-$2-exit-${code}:${command}" ||
    log "error: could not signal CloudFormation; it fails the stack at the boot timeout"
  exit "$code"
}

# Amazon Linux specifics: install_cfn_bootstrap, install_packages, select_java (Debian's: test/systemd/).
# The helper scripts come first, so that every later failure reaches CloudFormation at once.
install_cfn_bootstrap() {
  retry dnf install -y aws-cfn-bootstrap
}

# logrotate rotates the slots' logs ('bluegreen init'); Amazon Linux images have it, but not every AMI.
install_packages() {
  if [[ $HOST_ROLE == fleet ]]; then
    dnf install -y nginx unzip logrotate "$APP_JAVA_PACKAGE"
    return 0
  fi
  curl -fsSL --retry 5 --output /etc/yum.repos.d/jenkins.repo "$JENKINS_REPO_FILE_URL"
  if [[ $HOST_ROLE == jenkins ]]; then
    # Node.js: the pipeline's fleet mode runs the bundled operator command (ec2-bluegreen.mjs).
    dnf install -y unzip fontconfig "$FLEET_NODE_PACKAGE" "$APP_JAVA_PACKAGE" "$JENKINS_JAVA_PACKAGE" "$JENKINS_PACKAGE" "${BUILD_PACKAGES[@]}"
    return 0
  fi
  dnf install -y nginx unzip logrotate fontconfig "$APP_JAVA_PACKAGE" "$JENKINS_JAVA_PACKAGE" "$JENKINS_PACKAGE" "${BUILD_PACKAGES[@]}"
}

ensure_swap() {
  if swapon --show=NAME --noheadings | grep -qx "$SWAP_FILE"; then
    return 0
  fi
  dd if=/dev/zero of="$SWAP_FILE" bs=1M count="$SWAP_MIB" status=none
  chmod 0600 "$SWAP_FILE"
  mkswap "$SWAP_FILE" >/dev/null
  swapon "$SWAP_FILE"
  grep -q "^${SWAP_FILE} " /etc/fstab || printf '%s none swap defaults 0 0\n' "$SWAP_FILE" >>/etc/fstab
}

# The `java` binary a package installed.
java_of_package() {
  local package=$1 files
  files=$(rpm -ql "$package")
  grep -m1 '/bin/java$' <<<"$files"
}

# `java` on PATH (what the app slots run) is Java 17; Jenkins is pointed at Java 21 explicitly.
select_java() {
  local app_java jenkins_java
  app_java=$(java_of_package "$APP_JAVA_PACKAGE")
  # Java 21 registers the higher priority; failing here would only mean the app runs on 21.
  alternatives --set java "$app_java" || log "warning: could not make ${app_java} the default java"
  [[ $HOST_ROLE != fleet ]] || return 0
  jenkins_java=$(java_of_package "$JENKINS_JAVA_PACKAGE")
  mkdir -p /etc/systemd/system/jenkins.service.d
  # A first start on a small burstable instance can take minutes.
  printf '[Service]\nEnvironment="JENKINS_JAVA_CMD=%s"\nTimeoutStartSec=600\n' "$jenkins_java" \
    >/etc/systemd/system/jenkins.service.d/bluegreen.conf
}

read_first_release() {
  local manifest key value
  manifest=$(retry aws ssm get-parameter --region "$REGION" --name "$FIRST_RELEASE_PARAMETER" \
    --query Parameter.Value --output text)
  while IFS='=' read -r key value; do
    case $key in
      engineUri) ENGINE_URI=$value ;;
      artifactUri) ARTIFACT_URI=$value ;;
      sha256) ARTIFACT_SHA256=$value ;;
      version) ARTIFACT_VERSION=$value ;;
      healthTimeout) HEALTH_TIMEOUT=$value ;;
      tlsSecret) TLS_SECRET=$value ;;
      BLUEGREEN_*) ENGINE_SETTINGS+="${key}=${value}"$'\n' ;;
      '') ;;
      *) log "ignoring unknown key '${key}' in ${FIRST_RELEASE_PARAMETER}" ;;
    esac
  done <<<"$manifest"
  local name
  for name in ENGINE_URI ARTIFACT_URI ARTIFACT_SHA256 ARTIFACT_VERSION HEALTH_TIMEOUT; do
    if [[ -z ${!name} ]]; then
      log "error: ${FIRST_RELEASE_PARAMETER} has no value for ${name}"
      return 1
    fi
  done
}

# Unpacks the zipped bundle at URI into DIR.new; swap_in then replaces DIR with it whole.
unpack_bundle() {
  local uri=$1 dir=$2 work
  work=$(mktemp -d)
  retry aws s3 cp --region "$REGION" --only-show-errors "$uri" "${work}/bundle.zip"
  rm -rf "${dir}.new"
  unzip -q "${work}/bundle.zip" -d "${dir}.new"
  rm -rf "$work"
  # Zip entries do not reliably carry Unix modes: the caller marks what is executable.
  chmod -R u=rwX,go=rX "${dir}.new"
}

swap_in() {
  local dir=$1
  rm -rf "$dir"
  mv "${dir}.new" "$dir"
}

install_engine() {
  unpack_bundle "$ENGINE_URI" "$ENGINE_DIR"
  chmod 0755 "${ENGINE_DIR}.new"/bin/*
  swap_in "$ENGINE_DIR"
  ln -sf "${ENGINE_DIR}/bin/bluegreen" "$ENGINE_COMMAND"

  # The configuration belongs to the operator once installed; a new bundle never overwrites
  # it (its defaults stay readable in ${ENGINE_DIR}/etc for comparison).
  if [[ ! -e $ENGINE_CONFIG ]]; then
    install -D -m 0644 "${ENGINE_DIR}/etc/bluegreen.conf" "$ENGINE_CONFIG"
    printf '%s' "$ENGINE_SETTINGS" >>"$ENGINE_CONFIG"
  fi
  install -m 0644 "${ENGINE_DIR}/systemd/${SLOT_UNIT}" "/etc/systemd/system/${SLOT_UNIT}"
  systemctl daemon-reload
}

# The secret's value is the PEM certificate (with its chain) and the PEM private key, one
# after the other. They go to root-owned files, the key readable by root only (Nginx's master
# reads it before dropping privileges); the engine renders a TLS server for them.
install_tls_certificate() {
  [[ -n $TLS_SECRET ]] || return 0
  install -d -m 0755 "$TLS_DIR"
  aws secretsmanager get-secret-value --region "$REGION" --secret-id "$TLS_SECRET" \
    --query SecretString --output text |
    awk -v cert="${TLS_DIR}/cert.pem.new" -v key="${TLS_DIR}/key.pem.new" '
      BEGIN { system("umask 077; : > \"" key "\""); out = "" }
      /^-----BEGIN CERTIFICATE-----/ { out = cert }
      /^-----BEGIN [A-Z ]*PRIVATE KEY-----/ { out = key }
      out != "" { print > out }
      /^-----END / { out = "" }'
  if ! grep -q 'BEGIN CERTIFICATE' "${TLS_DIR}/cert.pem.new" 2>/dev/null ||
    ! grep -q 'PRIVATE KEY' "${TLS_DIR}/key.pem.new"; then
    rm -f "${TLS_DIR}"/*.new
    log "error: the TLS secret ${TLS_SECRET} must hold a PEM certificate and a PEM private key"
    return 1
  fi
  chmod 0644 "${TLS_DIR}/cert.pem.new"
  chmod 0600 "${TLS_DIR}/key.pem.new"
  mv -f "${TLS_DIR}/cert.pem.new" "${TLS_DIR}/cert.pem"
  mv -f "${TLS_DIR}/key.pem.new" "${TLS_DIR}/key.pem"
  if ! grep -q '^BLUEGREEN_NGINX_TLS_CERT=' "$ENGINE_CONFIG"; then
    printf 'BLUEGREEN_NGINX_TLS_CERT=%s\nBLUEGREEN_NGINX_TLS_KEY=%s\n' "${TLS_DIR}/cert.pem" "${TLS_DIR}/key.pem" >>"$ENGINE_CONFIG"
  fi
  log "TLS certificate from ${TLS_SECRET} installed for Nginx"
}

start_nginx() {
  "$ENGINE_COMMAND" init
  systemctl enable --now nginx
}

deploy_release() {
  log "deploying ${ARTIFACT_URI} as version ${ARTIFACT_VERSION}"
  AWS_DEFAULT_REGION=$REGION BLUEGREEN_HEALTH_TIMEOUT=$HEALTH_TIMEOUT \
    "$ENGINE_COMMAND" deploy "$ARTIFACT_URI" --version "$ARTIFACT_VERSION" --sha256 "$ARTIFACT_SHA256"
}

# What the last successful roll-out recorded (FLEET_RELEASE_KEYS in lib/contract.ts); empty
# while none has ('#' lines, as FLEET_RELEASE_UNSET, are comments).
RECORDED_URI=''
RECORDED_SHA256=''
RECORDED_VERSION=''
read_fleet_release() {
  local record key value
  record=$(aws ssm get-parameter --region "$REGION" --name "$FLEET_RELEASE_PARAMETER" \
    --query Parameter.Value --output text)
  RECORDED_URI='' RECORDED_SHA256='' RECORDED_VERSION=''
  while IFS='=' read -r key value; do
    case $key in
      artifactUri) RECORDED_URI=$value ;;
      sha256) RECORDED_SHA256=$value ;;
      version) RECORDED_VERSION=$value ;;
    esac
  done <<<"$record"
  [[ -n $RECORDED_URI && -n $RECORDED_SHA256 ]] || RECORDED_URI='' RECORDED_SHA256=''
}

# A release recorded without a label gets the one the engine would give it: sha256- and the
# first 12 digits of its sha256 (defaultReleaseLabel in lib/contract.ts;
# test/contract/release-label.test.ts checks that the two agree with it).
readonly DEFAULT_RELEASE_LABEL_PREFIX=sha256-
use_recorded_release() {
  ARTIFACT_URI=$RECORDED_URI
  ARTIFACT_SHA256=$RECORDED_SHA256
  ARTIFACT_VERSION=${RECORDED_VERSION:-$DEFAULT_RELEASE_LABEL_PREFIX${RECORDED_SHA256:0:12}}
}

# A host the group adds runs what the fleet runs. A roll-out that recorded a release while
# this host deployed may not have counted it as a target, so it deploys that one too.
deploy_fleet_release() {
  local deploys=0
  read_fleet_release
  if [[ -n $RECORDED_SHA256 ]]; then
    use_recorded_release
  else
    log "${FLEET_RELEASE_PARAMETER} records no release yet: deploying the stack's first release"
  fi
  while :; do
    deploy_release
    read_fleet_release
    [[ -n $RECORDED_SHA256 && $RECORDED_SHA256 != "$ARTIFACT_SHA256" ]] || return 0
    if ((++deploys > FLEET_CATCH_UP_DEPLOYS)); then
      log "warning: the fleet release changed ${deploys} times during this boot; keeping ${ARTIFACT_VERSION}"
      return 0
    fi
    log "a roll-out recorded ${RECORDED_URI} while this host deployed ${ARTIFACT_VERSION}: deploying it too"
    use_recorded_release
  done
}

# The settings name the Jenkins bundle (assets/jenkins/); its configure-jenkins installs the
# plugins, the sudoers rule, the secrets and the JCasC configuration.
configure_jenkins() {
  local bundle_uri
  install -d -m 0755 "$(dirname "$JENKINS_SETTINGS_FILE")"
  aws ssm get-parameter --region "$REGION" --name "$JENKINS_SETTINGS_PARAMETER" \
    --query Parameter.Value --output text >"$JENKINS_SETTINGS_FILE"
  bundle_uri=$(sed -n 's/^bundleUri=//p' "$JENKINS_SETTINGS_FILE")
  if [[ -z $bundle_uri ]]; then
    log "error: ${JENKINS_SETTINGS_PARAMETER} names no bundleUri"
    return 1
  fi
  unpack_bundle "$bundle_uri" "$JENKINS_TOOLS_DIR"
  chmod 0755 "${JENKINS_TOOLS_DIR}.new/configure-jenkins" "${JENKINS_TOOLS_DIR}.new/bluegreen-pipeline"
  swap_in "$JENKINS_TOOLS_DIR"
  AWS_DEFAULT_REGION=$REGION "${JENKINS_TOOLS_DIR}/configure-jenkins" install "$JENKINS_SETTINGS_FILE"
}

start_jenkins() {
  systemctl daemon-reload
  systemctl enable --now jenkins
}

# Jenkins answers, its admin login from the configuration works, and the job exists.
verify_jenkins() {
  "${JENKINS_TOOLS_DIR}/configure-jenkins" verify "$JENKINS_SETTINGS_FILE"
}

# Only root and METADATA_USERS may get the role's credentials (assets/userdata/imds-guard.sh).
guard_metadata() {
  retry aws s3 cp --region "$REGION" --only-show-errors "$METADATA_GUARD_URI" "$METADATA_GUARD"
  chmod 0755 "$METADATA_GUARD"
  # shellcheck disable=SC2086 # a user per word
  "$METADATA_GUARD" install $METADATA_USERS
}

# Any answer but a gateway error means Nginx reaches a live slot (the app may not serve `/`).
check_site() {
  local status
  status=$(curl -sS --max-time 10 --output /dev/null --write-out '%{http_code}' "http://127.0.0.1:${SITE_PORT}/")
  if [[ ! $status =~ ^[1-4][0-9][0-9]$ ]]; then
    log "error: Nginx on port ${SITE_PORT} answered HTTP ${status} instead of passing the request to the app"
    return 1
  fi
  log "Nginx on port ${SITE_PORT} serves the app (HTTP ${status})"
}

boot_single_host() {
  install_packages
  ensure_swap
  select_java
  read_first_release
  install_engine
  install_tls_certificate
  start_nginx
  guard_metadata
  # The app goes first: Jenkins' first start would eat the CPU credits its health check needs.
  deploy_release
  configure_jenkins
  start_jenkins
  verify_jenkins
  check_site
  signal_cloudformation 0 "serving version ${ARTIFACT_VERSION} through Nginx; Jenkins configured as code"
}

# Nginx answers the load balancer's health check 502 until the first deploy starts a slot.
# Behind the load balancer, Nginx keeps no idle client connections: a reload at each swap would
# close them, and the balancer answers 502 (without a retry) for a POST it had just sent on one.
behind_load_balancer() {
  grep -q '^BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=' "$ENGINE_CONFIG" ||
    printf 'BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=0\n' >>"$ENGINE_CONFIG"
}

boot_fleet_host() {
  install_packages
  ensure_swap
  select_java
  read_first_release
  install_engine
  behind_load_balancer
  install_tls_certificate
  start_nginx
  guard_metadata
  deploy_fleet_release
  check_site
  signal_cloudformation 0 "serving version ${ARTIFACT_VERSION} through Nginx"
}

boot_jenkins_host() {
  install_packages
  ensure_swap
  select_java
  guard_metadata
  configure_jenkins
  start_jenkins
  verify_jenkins
  signal_cloudformation 0 "Jenkins configured as code; it deploys to the fleet through the SSM document"
}

main() {
  trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
  log "first boot of stack ${STACK_NAME} in ${REGION} as a ${HOST_ROLE} host"
  install_cfn_bootstrap
  case $HOST_ROLE in
    single) boot_single_host ;;
    fleet) boot_fleet_host ;;
    jenkins) boot_jenkins_host ;;
    *) log "error: HOST_ROLE is '${HOST_ROLE}', not single, fleet or jenkins"; false ;;
  esac
  log "done"
}

# Sourcing the script (as the tests do) defines the functions without running the boot.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
