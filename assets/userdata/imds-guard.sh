#!/bin/bash
# Keeps the instance role's credentials from every local user but root and the users named: a
# packet-filter rule (nftables, matching the owner of the sending socket) rejects their
# connections to the instance metadata service, over IPv4 and IPv6. IMDSv2 with a hop limit of 1
# stops containers and other machines, not local processes: without this rule the app (which
# faces the internet), Jenkins' builds and Session Manager's ssm-user could all get the role's
# credentials, and with them the stack's secrets.
#
#   bluegreen-imds-guard install [USER...]
#
# Run as root by the first boot (assets/userdata/bootstrap.sh) once the users exist; run it again
# to change who is allowed. It writes the rule and a systemd unit that loads it on every boot
# before the network comes up (so before the app slots, Jenkins and the SSM agent start), and
# loads it now. Users are resolved to their ids here, so the boot needs no user database.
# Refused connections are rejected, not dropped: an SDK fails at once instead of waiting out
# its timeout.
set -Eeuo pipefail

readonly METADATA_IPV4=169.254.169.254
readonly METADATA_IPV6=fd00:ec2::254
readonly TABLE='inet bluegreen_imds'
readonly RULES_FILE=/etc/nftables/bluegreen-imds-guard.nft
readonly UNIT_FILE=/etc/systemd/system/bluegreen-imds-guard.service

log() {
  printf 'bluegreen-imds-guard: %s\n' "$*"
}

fail() {
  printf 'bluegreen-imds-guard: error: %s\n' "$*" >&2
  exit 1
}

trap 'fail "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR

# "0, UID, ...": root first, then each user's id.
allowed_uids() {
  local user uid
  printf '0'
  for user in "$@"; do
    uid=$(id -u -- "$user" 2>/dev/null) ||
      fail "there is no user '${user}' to allow; nothing was changed. Create the user first, or leave it out."
    printf ', %s' "$uid"
  done
}

# The whole table, replaced in one transaction each time it is loaded: declaring it first makes
# the delete succeed on a boot where it does not exist yet.
render_rules() {
  local uids=$1 users=$2
  cat <<EOF
# Written by bluegreen-imds-guard: only root${users:+ and ${users}} may reach the instance metadata service.
table ${TABLE}
delete table ${TABLE}
table ${TABLE} {
  chain output {
    type filter hook output priority filter; policy accept;
    meta skuid != { ${uids} } ip daddr ${METADATA_IPV4} reject
    meta skuid != { ${uids} } ip6 daddr ${METADATA_IPV6} reject
  }
}
EOF
}

# No ExecStop: stopping the unit must not open the metadata service.
render_unit() {
  local nft=$1
  cat <<EOF
# Written by bluegreen-imds-guard.
[Unit]
Description=Only root and the users in ${RULES_FILE} reach the instance metadata service
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${nft} -f ${RULES_FILE}

[Install]
WantedBy=multi-user.target
EOF
}

# Replaces FILE with standard input through a temporary file, so it is never half written;
# with CHECK, only once CHECK (the candidate's path appended) accepts it.
install_file() {
  local file=$1 candidate
  shift
  candidate=$(mktemp "${file}.XXXXXX")
  cat >"$candidate"
  chmod 0644 "$candidate"
  if (($# > 0)) && ! "$@" "$candidate"; then
    rm -f "$candidate"
    fail "'$*' refused the new ${file} (see above); the rule in force and the one loaded at boot are unchanged."
  fi
  mv -f "$candidate" "$file"
}

cmd_install() {
  local uids nft unit
  ((EUID == 0)) || fail "run it as root: it changes the packet filter and installs a systemd unit."
  uids=$(allowed_uids "$@") || exit 1
  command -v nft >/dev/null || dnf install -y nftables
  nft=$(command -v nft)
  unit=$(basename "$UNIT_FILE")
  install -d -m 0755 "$(dirname "$RULES_FILE")"
  install_file "$RULES_FILE" "$nft" --check --file < <(render_rules "$uids" "$*")
  install_file "$UNIT_FILE" < <(render_unit "$nft")
  systemctl daemon-reload
  systemctl enable "$unit"
  # restart, not start: a second install must load its new rule into the running unit.
  systemctl restart "$unit"
  log "only root${*:+ and $*} may reach the instance metadata service (${METADATA_IPV4}, ${METADATA_IPV6}); ${unit} loads the rule on every boot"
}

main() {
  case ${1:-} in
    install) shift; cmd_install "$@" ;;
    *) fail "usage: bluegreen-imds-guard install [USER...] (root and the users named may reach the instance metadata service)" ;;
  esac
}

main "$@"
