# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# Artifacts: fetching, checking and keeping releases. Sourced, never run.

# A deploy through sudo runs as root for an unprivileged caller: Jenkins' builds, through the
# rule assets/jenkins/sudoers installs. sudo sets SUDO_UID, and that rule's env_reset keeps the
# caller from setting it. Root's own runs (the SSM document, the first boot) have no caller, and
# root running sudo is still root.
sudo_caller() {
  ((EUID == 0)) && [[ -n ${SUDO_UID:-} && $SUDO_UID != 0 ]]
}

# as_sudo_caller COMMAND...: COMMAND as the caller, with its groups, so that the kernel grants
# it what it grants the caller, not root.
as_sudo_caller() {
  setpriv --reuid="$SUDO_UID" --regid="${SUDO_GID:?sudo sets SUDO_GID with SUDO_UID}" --init-groups -- "$@"
}

# resolve_sudo_artifact PATH [VAR]: where PATH really is, for a deploy through sudo; dies unless
# it is inside BLUEGREEN_SUDO_ARTIFACT_ROOT, the directory the sudoers rule names. The rule only
# matches text: its '*' also matches '..', and it cannot see symlinks. So the path is resolved,
# symlinks and '..' alike, as the caller resolves it (root's directories stay as closed to the
# caller as they are), and the place it ends in is what is checked.
resolve_sudo_artifact() {
  local resolve_sudo_path=$1 resolve_sudo_root resolve_sudo_real who=${SUDO_USER:-uid $SUDO_UID}
  command -v setpriv >/dev/null ||
    die "$EXIT_UNEXPECTED" "a deploy through sudo ($who) needs setpriv (package util-linux) to look at the artifact as $who, and this host has none. Nothing was changed; the live slot keeps serving. Install util-linux, then run this again."
  resolve_sudo_root=$(realpath -e -- "$BLUEGREEN_SUDO_ARTIFACT_ROOT" 2>/dev/null) ||
    die "$EXIT_USAGE" "a deploy through sudo ($who) takes a jar only from inside BLUEGREEN_SUDO_ARTIFACT_ROOT, $BLUEGREEN_SUDO_ARTIFACT_ROOT, which does not exist on this host. Nothing was changed; the live slot keeps serving. Set it to the directory the sudoers rule names, or deploy as root from a login shell ('sudo su -'), not through sudo."
  resolve_sudo_real=$(as_sudo_caller realpath -m -- "$resolve_sudo_path")
  if [[ $resolve_sudo_real != "${resolve_sudo_root%/}"/* ]]; then
    die "$EXIT_USAGE" "artifact $resolve_sudo_path is $resolve_sudo_real, outside $resolve_sudo_root, the only directory a deploy through sudo ($who) may take a jar from (BLUEGREEN_SUDO_ARTIFACT_ROOT, as the sudoers rule; '..' and symlinks are followed first). Nothing was changed; the live slot keeps serving. Deploy the jar your build wrote in its workspace."
  fi
  put "${2:-}" "$resolve_sudo_real"
}

# artifact_display URI VAR: URI as the engine's messages, its lock and its history name it. A
# URL's query and user info are replaced by <hidden> (the marker the stack's own redaction uses):
# a presigned URL's query holds a signature that fetches the object until it expires, and often
# a session token, and these messages reach the SSM output, CloudWatch Logs and the history file,
# which outlive any expiry. Scheme, host and path stay, so the reader still knows what failed.
artifact_display() {
  local uri=$1 scheme rest authority userinfo path after fragment=''
  if [[ $uri != *://* ]]; then
    put "$2" "$uri"
    return 0
  fi
  scheme=${uri%%://*}
  rest=${uri#*://}
  authority=${rest%%[/?#]*}
  rest=${rest:${#authority}}
  if [[ $authority == *@* ]]; then
    userinfo=${authority%@*}
    # An http(s) user name is as often a token as a name: all of it goes. Elsewhere a user name
    # alone (ssh://git@host) stays, and only a password goes.
    if [[ ${scheme,,} == http || ${scheme,,} == https ]]; then
      userinfo='<hidden>'
    elif [[ $userinfo == [!:]*:* ]]; then
      userinfo="${userinfo%%:*}:<hidden>"
    elif [[ $userinfo == *:* ]]; then
      userinfo='<hidden>'
    fi
    authority="$userinfo@${authority##*@}"
  fi
  path=${rest%%[?#]*}
  after=${rest:${#path}}
  if [[ $after == \?* ]]; then
    [[ $after != *#* ]] || fragment="#${after#*#}"
    rest="$path?<hidden>$fragment"
  fi
  put "$2" "$scheme://$authority$rest"
}

# fetch_artifact URI SOURCE NAME -> sets ARTIFACT_PATH (a download lands in the incoming
# directory). SOURCE is where a local URI really is (resolve_sudo_artifact); the messages call
# it NAME (artifact_display's URI).
ARTIFACT_PATH=
fetch_artifact() {
  local uri=$1 source=$2 name=$3 dest output full advice
  case $uri in
    s3://*)
      command -v aws >/dev/null ||
        die "$EXIT_BAD_ARTIFACT" "cannot fetch $name: the AWS CLI ('aws') is not installed. Nothing was changed."
      dest=$(mktemp "$INCOMING_DIR/artifact.XXXXXX")
      TEMP_FILES+=("$dest")
      if ! output=$(aws s3 cp --only-show-errors "$uri" "$dest" 2>&1); then
        die "$EXIT_BAD_ARTIFACT" "could not download $name: $output. Nothing was changed; check the URI and the instance role's read access."
      fi
      ;;
    http://* | https://*)
      dest=$(mktemp "$INCOMING_DIR/artifact.XXXXXX")
      TEMP_FILES+=("$dest")
      # The URL goes to curl on its standard input, not its command line, which every user of
      # the host can read in ps for as long as the download takes.
      local quoted=${uri//\\/\\\\}
      quoted=${quoted//\"/\\\"}
      if ! output=$(printf 'url = "%s"\n' "$quoted" |
        curl -fsSL --retry 3 --connect-timeout 10 --max-time 600 -o "$dest" --config - 2>&1); then
        output=${output//"$uri"/"$name"}
        full=$(disk_full_note "$INCOMING_DIR")
        advice='check the URL'
        [[ -z $full ]] || advice="free space in $INCOMING_DIR, then deploy again"
        die "$EXIT_BAD_ARTIFACT" "could not download $name: ${output:-curl failed}$full. Nothing was changed; $advice."
      fi
      ;;
    *://*)
      die "$EXIT_BAD_ARTIFACT" "unsupported artifact URI '$name': use a local path, s3://BUCKET/KEY or http(s)://... Nothing was changed."
      ;;
    *)
      check_local_file "$source" "$uri"
      # Check and store a private copy, never the caller's path: a build that controls its
      # workspace could otherwise swap the file (or a symlink) between the check and the copy.
      dest=$(mktemp "$INCOMING_DIR/artifact.XXXXXX")
      TEMP_FILES+=("$dest")
      if sudo_caller; then
        # Read as the caller: through sudo, root reads for the caller only what the caller may
        # read itself. A path inside the workspace can still name root's file (a hard link), and
        # the caller can swap the path between the check and this read: neither gets it more.
        if ! output=$(as_sudo_caller cat -- "$source" 2>&1 >"$dest"); then
          die "$EXIT_BAD_ARTIFACT" "artifact $uri is not readable by ${SUDO_USER:-uid $SUDO_UID}, who ran this through sudo (${output:-cat failed}): a deploy through sudo takes only a jar its caller can read. Nothing was changed; the live slot keeps serving. Deploy the jar your build wrote, which its user can read."
        fi
      else
        cp --dereference -- "$source" "$dest"
      fi
      ;;
  esac
  ARTIFACT_PATH=$dest
}

# check_local_file PATH [NAME]: NAME (default PATH) is how the messages call it.
check_local_file() {
  local path=$1 name=${2:-$1}
  [[ -e $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $name does not exist. Nothing was changed; the live slot keeps serving. Give the path of the jar to deploy."
  [[ -f $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $name is not a regular file. Nothing was changed; give the path of a jar."
  [[ -r $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $name is not readable by $(id -un). Nothing was changed; fix its permissions."
}

# check_artifact PATH DISPLAY_NAME EXPECTED_SHA -> sets ARTIFACT_SHA; dies on a bad artifact.
ARTIFACT_SHA=
check_artifact() {
  local path=$1 name=$2 expected=$3 sha manifest unzip_status=0
  [[ -s $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $name is empty (0 bytes): an interrupted build or upload? Nothing was changed; rebuild it and deploy again."
  # One unzip both reads the zip's directory and extracts the manifest: 11 means a readable zip
  # without that entry; any other failure, not a readable zip.
  manifest=$(unzip -p "$path" META-INF/MANIFEST.MF 2>/dev/null) || unzip_status=$?
  if ((unzip_status != 0 && unzip_status != 11)); then
    die "$EXIT_BAD_ARTIFACT" "artifact $name is not a jar (not a readable zip archive). Nothing was changed; the live slot keeps serving. Deploy the jar your build produced (e.g. build/libs/*.jar)."
  fi
  if [[ ! $manifest =~ (^|$'\n')Main-Class:[[:space:]]*[^[:space:]] ]]; then
    die "$EXIT_BAD_ARTIFACT" "artifact $name is a jar without Main-Class in META-INF/MANIFEST.MF, so 'java -jar' cannot run it. Nothing was changed; deploy the executable (boot) jar, not the plain one."
  fi
  sha=$(sha256sum "$path")
  sha=${sha%% *}
  if [[ -n $expected && $sha != "$expected" ]]; then
    die "$EXIT_BAD_ARTIFACT" "artifact $name has sha256 $sha, but $expected was expected. Nothing was changed; the file is not the one you meant to deploy (or it was corrupted in transit)."
  fi
  ARTIFACT_SHA=$sha
}

# store_release PATH VERSION SHA -> sets RELEASE_JAR. Releases are never
# overwritten in place: a running JVM reads its jar lazily, and a jar replaced under it would
# serve the new version's classes from the old process.
RELEASE_JAR=
store_release() {
  local path=$1 version=$2 sha=$3 dir jar created
  dir=$RELEASES_DIR/$version-${sha:0:12}
  jar=$dir/app.jar
  if [[ -f $jar ]] && [[ $(sha256sum "$jar") == "$sha "* ]]; then
    touch "$dir"
    RELEASE_JAR=$jar
    return 0
  fi
  mkdir -p "$dir"
  # PATH is this operation's private copy in the incoming directory (same file system): move it.
  # The app reads it as the slot user (systemd runner); no one else may.
  chmod 0640 "$path"
  share_with_slots "$dir" "$path"
  mv -f "$path" "$jar"
  iso_now created
  printf 'version=%s\nsha256=%s\ncreated=%s\n' "$version" "$sha" "$created" >"$dir/release.env"
  RELEASE_JAR=$jar
}

# Keeps the newest BLUEGREEN_KEEP_RELEASES releases, and always the ones a slot records. Newest
# by modification time (store_release touches a release it reuses); sorted in bash with -nt,
# which for a handful of directories costs less than a find | sort | cut pipeline's forks.
prune_releases() {
  local -A keep=()
  local slot release dir count=0 i
  local -a dirs=() newest_first=() removed=()
  dirs=("$RELEASES_DIR"/*/)
  [[ -d ${dirs[0]:-} ]] || return 0
  ((${#dirs[@]} > BLUEGREEN_KEEP_RELEASES)) || return 0
  for slot in "${SLOT_NAMES[@]}"; do
    release=$(slot_record_get "$slot" release)
    [[ -n $release ]] && keep[${release%/*}]=1
  done
  for dir in "${dirs[@]}"; do
    dir=${dir%/}
    # Insertion sort, newest first.
    for ((i = ${#newest_first[@]}; i > 0; i--)); do
      [[ $dir -nt ${newest_first[i - 1]} ]] || break
      newest_first[i]=${newest_first[i - 1]}
    done
    newest_first[i]=$dir
  done
  for dir in "${newest_first[@]}"; do
    count=$((count + 1))
    if ((count > BLUEGREEN_KEEP_RELEASES)) && [[ -z ${keep[$dir]:-} ]]; then
      removed+=("$dir")
    fi
  done
  ((${#removed[@]} == 0)) && return 0
  rm -rf -- "${removed[@]}"
  log prune "removed old release(s): ${removed[*]##*/}"
}
