# shellcheck shell=bash
# SELinux: with the policy enforcing, Nginx (httpd_t) may not connect to the app slots' ports
# unless the httpd_can_network_connect boolean is on; the first request through Nginx then
# fails with 502 and the first boot's site check fails the stack. Sourced, never run.

# The boolean, not port labels: it needs only policycoreutils (in every Amazon Linux 2023
# image), where labelling 8081/8082 needs semanage, a package more. Set persistently (-P) while
# the policy is merely permissive too, so an admin who turns enforcing on later breaks nothing.
readonly NGINX_CONNECT_BOOLEAN=httpd_can_network_connect

allow_nginx_to_slots() {
  local mode state
  command -v getenforce >/dev/null 2>&1 || return 0
  mode=$(getenforce 2>/dev/null) || return 0
  [[ $mode == Enforcing || $mode == Permissive ]] || return 0
  state=$(getsebool "$NGINX_CONNECT_BOOLEAN" 2>/dev/null || true)
  [[ $state != *"--> on" ]] || return 0
  if ! setsebool -P "$NGINX_CONNECT_BOOLEAN" 1; then
    [[ $mode == Enforcing ]] || { warn "SELinux is permissive and 'setsebool -P $NGINX_CONNECT_BOOLEAN 1' failed; Nginx works now, but would not reach the app if SELinux were set to enforcing."; return 0; }
    die "$EXIT_USAGE" "SELinux is enforcing and 'setsebool -P $NGINX_CONNECT_BOOLEAN 1' failed, so Nginx could not reach the app on 127.0.0.1:$BLUEGREEN_BLUE_PORT/$BLUEGREEN_GREEN_PORT. Nothing was switched. Turn the boolean on by hand (or label the ports http_port_t with semanage), then run 'bluegreen init' again."
  fi
  log init "SELinux is ${mode,,}: turned $NGINX_CONNECT_BOOLEAN on, so Nginx may connect to the app slots"
}
