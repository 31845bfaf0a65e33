#!/usr/bin/env bash
# Installs a CUDA toolkit from PyPI wheels, so that `cargo build --release --features cuda`
# compiles on a machine with no GPU and no system CUDA (docs/cuda.md). Not called by .ci/run:
# one command for a developer, then `source` the environment file it prints.
#
#   .ci/cuda-toolchain.sh            # toolkit 13.0 into ~/.cache/blockdrop/cuda-13.0
#   source ~/.cache/blockdrop/cuda-13.0/env.sh
#   cargo build --release --features cuda
#
# Settings (environment):
#   BLOCKDROP_CUDA_VERSION  toolkit release, major.minor (default 13.0). Choose it for the
#                           driver the binary will meet: PTX from a newer nvcc does not load
#                           on an older driver (`nvidia-smi` names the driver's CUDA release).
#   BLOCKDROP_CUDA_PREFIX   where to install (default ~/.cache/blockdrop/cuda-VERSION)
#   CUDA_COMPUTE_CAP        GPU architecture to compile for, without a GPU to ask (default 90:
#                           H100/H200; 80 A100, 89 L4/L40, 120 RTX 50xx)
#
# What it does, and why each step is needed:
#   1. a venv with the toolkit wheels (nvcc, runtime, CCCL headers, NVRTC, cuRAND, cuBLAS):
#      the -cu12 wheels ship no nvcc, the 13.x metapackage does;
#   2. versionless links (libcudart.so → libcudart.so.13 …): the linker asks for -lcudart;
#   3. a link stub libcuda.so in lib/stubs, made from the driver functions cudarc declares:
#      candle links the driver library, which only a GPU machine's driver provides. The stub is
#      for linking only: the binary runs against the real libcuda.so.1;
#   4. env.sh: CUDA_HOME, PATH (cudarc reads `nvcc --version` to pick its bindings),
#      CUDA_COMPUTE_CAP, LD_LIBRARY_PATH for the toolkit's libraries, and a target folder of
#      its own so that the CPU build's cache is not rebuilt.
set -euo pipefail

version="${BLOCKDROP_CUDA_VERSION:-13.0}"
prefix="${BLOCKDROP_CUDA_PREFIX:-$HOME/.cache/blockdrop/cuda-$version}"
compute_cap="${CUDA_COMPUTE_CAP:-90}"
major="${version%%.*}"
repo="$(cd "$(dirname "$0")/.." && pwd)"

case "$version" in
  13.*) ;;
  *) echo "cuda-toolchain: only CUDA 13.x ships nvcc as a wheel (asked for $version)" >&2; exit 2 ;;
esac
for tool in python3 gcc cargo; do
  command -v "$tool" >/dev/null || { echo "cuda-toolchain: needs $tool on PATH" >&2; exit 2; }
done

echo "== CUDA $version toolkit wheels into $prefix"
python3 -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --quiet --upgrade pip
"$prefix/venv/bin/python" -m pip install --quiet \
  "cuda-toolkit[nvcc,cudart,cccl,nvrtc,curand,cublas]==$version.*"
cuda_home="$("$prefix/venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu'"$major"'"))')"
[ -x "$cuda_home/bin/nvcc" ] || { echo "cuda-toolchain: no nvcc in $cuda_home/bin" >&2; exit 1; }
"$cuda_home/bin/nvcc" --version | tail -2

echo "== versionless library links"
for lib in "$cuda_home"/lib/lib*.so.*; do
  base="$(basename "$lib")"
  plain="${base%%.so.*}.so"
  [ -e "$cuda_home/lib/$plain" ] || ln -s "$base" "$cuda_home/lib/$plain"
done

echo "== link stub for the driver library (libcuda.so)"
(cd "$repo" && cargo fetch --quiet)
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
cudarc_version="$(sed -n '/^name = "cudarc"$/{n;s/^version = "\(.*\)"$/\1/p}' "$repo/Cargo.lock")"
driver_sys="$(ls -d "$cargo_home"/registry/src/*/cudarc-"$cudarc_version"/src/driver/sys/mod.rs | head -1)"
[ -f "$driver_sys" ] || { echo "cuda-toolchain: cudarc $cudarc_version's sources not found under $cargo_home" >&2; exit 1; }
mkdir -p "$cuda_home/lib/stubs"
grep -oE '^ +fn cu[A-Za-z0-9_]+' "$driver_sys" | sed 's/^ *fn //' | sort -u |
  sed 's/.*/int &(void) { return 999; }/' > "$prefix/libcuda_stub.c"
gcc -shared -fPIC -o "$cuda_home/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$prefix/libcuda_stub.c"
# The name the binary asks the loader for, when the stub stands in for a driver (--help).
ln -sf libcuda.so "$cuda_home/lib/stubs/libcuda.so.1"
echo "stub with $(wc -l < "$prefix/libcuda_stub.c") driver functions (each returns CUDA_ERROR_UNKNOWN)"

cat > "$prefix/env.sh" <<EOF
# Written by .ci/cuda-toolchain.sh: source it before \`cargo build --release --features cuda\`.
export CUDA_HOME="$cuda_home"
export PATH="$cuda_home/bin:\$PATH"
export CUDA_COMPUTE_CAP="$compute_cap"
export LD_LIBRARY_PATH="$cuda_home/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export CARGO_TARGET_DIR="\${BLOCKDROP_CUDA_TARGET:-$prefix/target}"
# To start the binary on a machine without a driver (--help, --device cpu), add the stub:
#   export LD_LIBRARY_PATH="$cuda_home/lib/stubs:\$LD_LIBRARY_PATH"
EOF
echo "== done: source $prefix/env.sh, then cargo build --release --features cuda"
