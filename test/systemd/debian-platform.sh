# shellcheck shell=bash
# Debian's versions of the first boot's Amazon Linux steps (install_cfn_bootstrap,
# install_packages, select_java in assets/userdata/bootstrap.sh), and the steps a test container
# cannot take. Sourced after the user data, inside the container of test/systemd/; every other
# step of the first boot then runs as the stack wrote it.
# shellcheck disable=SC2034,SC2317 # read by, and called from, the sourced user data

# Where the test puts what it brings in (container.sh binds it read-only).
readonly TEST_DIR=/opt/bluegreen-test

# aws-cfn-bootstrap is Amazon's: a stand-in cfn-signal records what it was told instead, for the
# test to read (/var/log/cfn-signal.log, one line per call).
install_cfn_bootstrap() {
  install -D -m 0755 "$TEST_DIR/cfn-signal" "$CFN_SIGNAL"
}

# The root file system has the packages already (test/systemd/container.sh). Amazon Linux's
# nginx package creates the user its workers run as (the engine's BLUEGREEN_NGINX_USER=nginx);
# Debian's runs them as www-data, so the same user is made here.
install_packages() {
  local command
  for command in nginx unzip curl systemctl logrotate python3; do
    command -v "$command" >/dev/null || { log "error: ${command} is not installed in the container"; return 1; }
  done
  id -u nginx >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /var/lib/nginx --shell /usr/sbin/nologin nginx
}

# The host's JDK 17 is bound in read-only; `java` on PATH is it, as Corretto 17 is on the host.
select_java() {
  local java candidate
  for candidate in /usr/lib/jvm/java-17-openjdk-*/bin/java; do java=$candidate; break; done
  [[ -x ${java:-} ]] || { log "error: no Java 17 in /usr/lib/jvm"; return 1; }
  update-alternatives --quiet --install /usr/bin/java java "$java" 1700
  update-alternatives --quiet --set java "$java"
}

# What a container that shares the host's kernel and network must not do: swap would be the
# host's, the metadata guard's nftables rules would be the host's, and Jenkins (its packages and
# plugins) needs the internet. docs/systemd-tests.md lists them as untested here.
ensure_swap() { log "container test: swap skipped (it would be the host's)"; }
guard_metadata() { log "container test: metadata guard skipped (its rules would be the host's)"; }
configure_jenkins() { log "container test: Jenkins skipped (no Jenkins packages or plugins offline)"; }
start_jenkins() { :; }
verify_jenkins() { :; }
