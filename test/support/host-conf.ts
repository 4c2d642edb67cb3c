/**
 * The engine configuration lines that lay a host out under one directory (its state, logs and
 * its own Nginx), for tests that run `bluegreen` commands without a running site.
 */
export function hostLayoutLines(home: string): string[] {
  return [
    `BLUEGREEN_HOME=${home}/home`,
    `BLUEGREEN_LOG_DIR=${home}/logs`,
    `BLUEGREEN_NGINX=nginx -p ${home}/nginx -c ${home}/nginx/nginx.conf -e ${home}/nginx/error.log`,
    `BLUEGREEN_NGINX_MAIN_CONF=${home}/nginx/nginx.conf`,
    `BLUEGREEN_NGINX_SITE_CONF=${home}/nginx/conf.d/bluegreen.conf`,
    `BLUEGREEN_NGINX_INCLUDE=${home}/nginx/bluegreen/live-upstream.conf`,
    `BLUEGREEN_NGINX_PID_FILE=${home}/nginx/nginx.pid`,
    `BLUEGREEN_NGINX_LOG_DIR=${home}/nginx/logs`,
    `BLUEGREEN_NGINX_TEMP_DIR=${home}/nginx/tmp`,
    'BLUEGREEN_NGINX_USER=',
  ];
}
