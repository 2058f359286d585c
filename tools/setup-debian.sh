#!/usr/bin/env bash
# Installs what stylenet needs on Debian 12 (run as root, or it uses sudo).
#   build: gcc/clang (with clang's OpenMP, sanitizer and libFuzzer runtimes), oneDNN (GEMM), cJSON,
#          libpng, libjpeg-turbo, libwebp (decoder and demuxer; the tests use its encoder), cairo,
#          libmicrohttpd, libzip (PyTorch zip checkpoints), ONNX's schema (libonnx-dev: onnx.proto)
#          and protobuf-c (its compiler generates the C code of that schema at build time; its
#          runtime packs the messages) for `export --onnx`; Open MPI for training over several
#          processes or machines (docs/cluster.md)
#   tests: Debian's PyTorch 1.13 + torchvision + numpy (the oracle), python3-venv (for the
#          official safetensors / tflite readers, onnx and onnxruntime from PyPI, installed by
#          `make test` into build/venv);
#          the serve tests: headless Chromium driven by Selenium, and wrk for the load test
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential clang libomp-dev libclang-rt-dev pkg-config make
      libdnnl-dev libcjson-dev libpng-dev libjpeg-dev libwebp-dev libcairo2-dev libmicrohttpd-dev libzip-dev
      libonnx-dev libprotobuf-c-dev protobuf-c-compiler
      fonts-dejavu-core
      libopenmpi-dev openmpi-bin)  # Open MPI: `mpirun -np N stylenet train` (data parallelism; optional:
                                   # without it the build trains on one process)
[ "${1:-}" = "--build-only" ] || pkgs+=(python3 python3-venv python3-numpy python3-torch python3-torchvision
                                     chromium chromium-driver python3-selenium wrk)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
