#!/usr/bin/env bash
# Builds skill.wasm from main.c with clang's wasm32-wasi target and wasi-libc.
# Debian/Ubuntu: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32
set -euo pipefail
cd "$(dirname "$0")"
"${CC:-clang}" --target=wasm32-wasi -O2 -s -Wall -Wextra -o skill.wasm main.c
echo "built $(pwd)/skill.wasm ($(wc -c < skill.wasm) bytes)"
