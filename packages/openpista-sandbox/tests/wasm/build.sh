#!/usr/bin/env bash
# Rebuilds the test modules (NAME.c -> NAME.wasm) with clang's wasm32-wasi target.
# Debian/Ubuntu: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32
set -euo pipefail
cd "$(dirname "$0")"
for source in *.c; do
    "${CC:-clang}" --target=wasm32-wasi -O2 -s -Wall -Wextra -o "${source%.c}.wasm" "$source"
done
ls -l ./*.wasm
