#!/usr/bin/env bash
# Checks that the crate builds for aarch64 (Apple/ARM users: the GEMM path with the gemm
# crate's NEON kernels, every x86 kernel behind cfg(target_arch)). Not part of CI: it needs
# the Rust target (rustup) and a C cross compiler for the build scripts of C dependencies
# (Debian's gcc-aarch64-linux-gnu), and a cold check takes ~10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq gcc-aarch64-linux-gnu
fi
CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  cargo check --release --all-targets --target aarch64-unknown-linux-gnu
echo "aarch64: cargo check passed"
