#!/bin/bash
# The original deploy2.sh of the blog post this project grows from (Korean; Nginx, Jenkins, EC2),
# re-created for the benchmark. Its logic, fixed sleeps, 10 s polling, messages and bugs are kept
# on purpose. Only paths, ports and the reload command are adapted, each on a line marked
# "adapted:", through variables whose defaults are the original's own values; see README.md.
#
# shellcheck disable=SC2006,SC2012,SC2086,SC2126,SC2129
# The lines below are the original's, flaws included, because the benchmark measures them:
# backticks (SC2006), picking the jar with `ls -t | head` (SC2012), unquoted expansions (SC2086:
# an empty or multi-word answer from /profile makes `[` fail, and the script falls through to
# "blue" whatever is live), `grep | wc -l` (SC2126) and one `>> deploy.log` per line (SC2129).

NOW_TIME=`date +"%Y%m%d - %H:%M:%S"`
echo -e "\n\n\n\n=============== <실행중인 서버 체크 시작> ===============" >> deploy.log
echo " 실행시간 : $NOW_TIME " >> deploy.log

## 변수셋팅
BASE_PATH="${ORIGINAL_BASE_PATH:-/home/ec2-user}" # adapted: path (was "/home/ec2-user")
JAR_PATH="$(ls -t ${BASE_PATH}/dev-blog-0.0.1-SNAPSHOT.jar | head -1)"

echo " 서버 정보 체크 " >> deploy.log
CURRENT_PROFILE=$(curl -s http://localhost:${ORIGINAL_NGINX_PORT:-80}/profile) # adapted: port (was http://localhost/profile)
echo " > 현재 서버: $CURRENT_PROFILE" >> deploy.log

## profile에 따른 셋팅
if [ $CURRENT_PROFILE == blue ]
then
    echo " green 서버로 변경합니다." >> deploy.log
    SET_PROFILE=green
    SET_PORT=${ORIGINAL_GREEN_PORT:-8082} # adapted: port (was 8082)
elif [ $CURRENT_PROFILE == green ]
then
    echo " blue 서버로 변경합니다." >> deploy.log
    SET_PROFILE=blue
    SET_PORT=${ORIGINAL_BLUE_PORT:-8081} # adapted: port (was 8081)
else
    echo " 현재 실행중이지 않습니다. : $CURRENT_PROFILE"
    echo " blue 서버로 변경합니다." >> deploy.log
    SET_PROFILE=blue
    SET_PORT=${ORIGINAL_BLUE_PORT:-8081} # adapted: port (was 8081)
fi
echo " > Profile: $SET_PROFILE" >> deploy.log
echo " > Port: $SET_PORT" >> deploy.log

#====================== 프로세스 종료 ===============================
echo -e "\n\n================< 프로세스 종료 시작 >===============" >> deploy.log
APP_NAME="dev-blog-0.0.1-SNAPSHOT.jar"
DEPLOY_APP=$SET_PROFILE-$APP_NAME
DEPLOY_APP_PATH=$BASE_PATH/$DEPLOY_APP
ln -fs $JAR_PATH $DEPLOY_APP_PATH

## 실행중인 프로세스 kill
if pgrep -f "$DEPLOY_APP" > /dev/null; then
    # The original's bug, kept: the pattern lacks its '$', so it matches no app and nothing is
    # stopped. adapted: no 'sudo' in front (the benchmark runs as root, which is what sudo gave).
    pkill -f "DEPLOY_APP"
    echo " $DEPLOY_APP_PATH 프로세스 종료" >> deploy.log
    sleep 5
else
    echo " 현재 구동중인 애플리케이션이 없습니다." >> deploy.log
fi

#========================== 배포=================================
echo -e "\n\n================< 배포 시작 >===============" >> deploy.log
# adapted: port. '--server.port' stands in for the port that the app's application-<profile>.yml
# set for each profile (blue 8081, green 8082); the sample app has no profile files.
java -jar $DEPLOY_APP --spring.profiles.active=$SET_PROFILE --server.port=$SET_PORT > app.log 2>&1 &
echo " $SET_PROFILE 10초후 Health Check 시작 " >> deploy.log
sleep 10

for reCnt in {1..10}
do
    response=$(curl -s http://localhost:$SET_PORT/actuator/health)
    upCount=$(echo $response | grep 'UP' | wc -l)

    if [ $upCount -ge 1 ]; then
        echo " > Health Check 성공!! " >> deploy.log
        break
    else
        echo " > Health Check의 응답이 없거나 status가 UP이 아닙니다." >> deploy.log
        echo " > Health Check Response : ${response} "
    fi

    if [ $reCnt -eq 10 ]
    then
        echo " > Health Check 실패.." >> deploy.log
        echo " > Nginx에 연결하지 않고 종료합니다. " >> deploy.log
        exit 1
    fi

    echo " > Health Check 연결 실패... 재시도! - $reCnt / 10" >> deploy.log
    sleep 10
done

## nginx proxy_pass change.
sleep 3
$BASE_PATH/switch.sh # adapted: path (was /home/ec2-user/switch.sh)
