#!/usr/bin/env bash
# Installs every Debian 12 package raftlock needs to build, test and run.
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler libprotobuf-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  librocksdb-dev
  libabsl-dev
  libspdlog-dev libfmt-dev
  catch2
  libyaml-cpp-dev zlib1g-dev
  libcli11-dev
  libcpp-httplib-dev
  python3-grpcio python3-protobuf python3-pytest python3-venv python3-pip python3-setuptools
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
