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
  local path=$1 name=$2 expected=$3 sha manifest
  [[ -s $path ]] || die "$EXIT_BAD_ARTIFACT" "artifact $name is empty (0 bytes): an interrupted build or upload? Nothing was changed; rebuild it and deploy again."
  if ! unzip -qq -l "$path" >/dev/null 2>&1; then
    die "$EXIT_BAD_ARTIFACT" "artifact $name is not a jar (not a readable zip archive). Nothing was changed; the live slot keeps serving. Deploy the jar your build produced (e.g. build/libs/*.jar)."
  fi
  manifest=$(unzip -p "$path" META-INF/MANIFEST.MF 2>/dev/null || true)
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
  local path=$1 version=$2 sha=$3 dir jar
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
  {
    printf 'version=%s\n' "$version"
    printf 'sha256=%s\n' "$sha"
    printf 'created=%s\n' "$(iso_now)"
  } >"$dir/release.env"
  RELEASE_JAR=$jar
}

# Keeps the newest BLUEGREEN_KEEP_RELEASES releases, and always the ones a slot records.
prune_releases() {
  local -A keep=()
  local slot release dir count=0 removed=()
  for slot in "${SLOT_NAMES[@]}"; do
    release=$(slot_record_get "$slot" release)
    [[ -n $release ]] && keep[$(dirname "$release")]=1
  done
  while IFS= read -r dir; do
    [[ -n $dir ]] || continue
    count=$((count + 1))
    if ((count > BLUEGREEN_KEEP_RELEASES)) && [[ -z ${keep[$dir]:-} ]]; then
      rm -rf -- "$dir"
      removed+=("${dir##*/}")
    fi
  done < <(find "$RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2-)
  ((${#removed[@]} == 0)) || log prune "removed old release(s): ${removed[*]}"
}
