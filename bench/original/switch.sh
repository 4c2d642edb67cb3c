#!/bin/bash
# The original switch.sh of the blog post, re-created for the benchmark (see deploy2.sh and
# README.md). It reads the live colour through Nginx again, rewrites the include in place and
# reloads. Only paths, ports and the reload command are adapted, on lines marked "adapted:".
#
# shellcheck disable=SC2086
# The original's unquoted tests, kept (SC2086): an empty or multi-word answer from /profile
# makes `[` fail, and the script falls through to port 8081 whatever is live.

echo -e "\n\n=============== <Nginx Reverse proxy 변경> ==============" >> deploy.log
CURRENT_PROFILE=$(curl -s http://localhost:${ORIGINAL_NGINX_PORT:-80}/profile) # adapted: port (was http://localhost/profile)
echo " > 현재 서버: $CURRENT_PROFILE" >> deploy.log

if [ $CURRENT_PROFILE == blue ]; then
    SET_PORT=${ORIGINAL_GREEN_PORT:-8082} # adapted: port (was 8082)
    echo " 변경 서버 : Green"
elif [ $CURRENT_PROFILE == green ]; then
    SET_PORT=${ORIGINAL_BLUE_PORT:-8081} # adapted: port (was 8081)
    echo "변경 서버 : Blue"
else
    echo " > 일치하는 Profile이 없습니다. : $CURRENT_PROFILE"
    echo " > 기본 Profile로 세팅합니다BLUE - (8081)"
    SET_PORT=${ORIGINAL_BLUE_PORT:-8081} # adapted: port (was 8081)
    echo " 기본 서버 : Blue"
fi

echo " > set port : $SET_PORT" >> deploy.log
# adapted: path (was /etc/nginx/conf.d/service-url.inc) and no 'sudo' (the benchmark runs as root).
echo "set \$service_port $SET_PORT;" | tee ${ORIGINAL_NGINX_PREFIX:-/etc/nginx}/conf.d/service-url.inc

echo " Nginx reload" >> deploy.log
# adapted: reload command (was 'sudo systemctl reload nginx', whose ExecReload signals the master
# the same way): this Nginx runs as a plain process with its own prefix.
nginx -p ${ORIGINAL_NGINX_PREFIX:-/etc/nginx} -c ${ORIGINAL_NGINX_PREFIX:-/etc/nginx}/nginx.conf -e ${ORIGINAL_NGINX_PREFIX:-/etc/nginx}/logs/error.log -s reload
echo " ********** 실행 종료 ********** " >> deploy.log
exit 0
