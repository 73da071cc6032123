#!/usr/bin/env bash
# Installs what building and testing Scission needs on Debian 12. Idempotent: when every package is
# already installed it returns at once without touching apt.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config git
      libonnx-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
      libsqlite3-dev libcli11-dev nlohmann-json3-dev libfmt-dev libzstd-dev liblz4-dev libssl-dev
      libgtest-dev libgmock-dev libbenchmark-dev iproute2 openssl python3 python3-torchvision
      clang-format libcpp-httplib-dev
      python3-grpcio python3-grpc-tools curl  # independent clients of `serve` in the tests
      python3-numpy python3-scipy python3-skimage espeak-ng)  # tools/make_test_inputs.py
[[ "${SCISSION_SETUP_BROWSER:-1}" == 1 ]] && pkgs+=(chromium)
command -v npm >/dev/null || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "-- installing Debian packages: ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "error: not root and no sudo; install: ${missing[*]}" >&2; exit 2; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
