# shellcheck shell=bash
# Globals set here are read by bin/bluegreen and the other libraries it sources.
# shellcheck disable=SC2034
# Artifacts: fetching, checking and keeping releases. Sourced, never run.

# fetch_artifact URI -> sets ARTIFACT_PATH (a download lands in the incoming directory).
ARTIFACT_PATH=
fetch_artifact() {
  local uri=$1 dest output
  case $uri in
    s3://*)
      command -v aws >/dev/null ||
        die "$EXIT_BAD_ARTIFACT" "cannot fetch $uri: the AWS CLI ('aws') is not installed. Nothing was changed."
      dest=$(mktemp "$INCOMING_DIR/artifact.XXXXXX")
      TEMP_FILES+=("$dest")
      if ! output=$(aws s3 cp --only-show-errors "$uri" "$dest" 2>&1); then
        die "$EXIT_BAD_ARTIFACT" "could not download $uri: $output. Nothing was changed; check the URI and the instance role's read access."
      fi
      ;;
    http://* | https://*)
      dest=$(mktemp "$INCOMING_DIR/artifact.XXXXXX")
      TEMP_FILES+=("$dest")
      if ! output=$(curl -fsSL --retry 3 --connect-timeout 10 --max-time 600 -o "$dest" "$uri" 2>&1); then
        die "$EXIT_BAD_ARTIFACT" "could not download $uri: ${output:-curl failed}. Nothing was changed; check the URL."
      fi
      ;;
    *://*)
      die "$EXIT_BAD_ARTIFACT" "unsupported artifact URI '$uri': use a local path, s3://BUCKET/KEY or http(s)://... Nothing was changed."
      ;;
    *)
      check_local_file "$uri"
      # Check and store a private copy, never the caller's path: a build that controls its
      # workspace could otherwise swap the file (or a symlink) between the check and the copy.
      dest=$(mktemp "$INCOMING_DIR/artifact.XXXXXX")
      TEMP_FILES+=("$dest")
      cp --dereference -- "$uri" "$dest"
      ;;
  esac
  ARTIFACT_PATH=$dest
}

check_local_file() {
  local path=$1
  [[ -e $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $path does not exist. Nothing was changed; the live slot keeps serving. Give the path of the jar to deploy."
  [[ -f $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $path is not a regular file. Nothing was changed; give the path of a jar."
  [[ -r $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $path is not readable by $(id -un). Nothing was changed; fix its permissions."
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
  chmod 0644 "$path"
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
