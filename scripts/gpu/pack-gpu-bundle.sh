#!/usr/bin/env bash
# Packs what a bare GPU machine (no network, no Bun, no node_modules) needs to run scripts/gpu/gpu-check.ts,
# small enough for one device call (64 MiB with the working tree): .gpu/bun.xz (the Bun runtime) and
# .gpu/nm.tar.xz (onnxruntime-node for linux-x64 with its bundled WebGPU EP, onnxruntime-web's WebGPU bundle
# and asyncify wasm, dawn.node, and the pure-JS dependencies). The 14 MB plain wasm is replaced by an empty
# file (only its path is imported). Run it with scripts/gpu/run-on-device.sh, carrying .gpu and .gl.
set -euo pipefail
cd "$(dirname "$0")/../.."
nm=node_modules
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p .gpu
xz -T2 -6 -c "$nm/bun/bin/bun.exe" > .gpu/bun.xz
copy() { for p in "$@"; do mkdir -p "$stage/$(dirname "$p")"; cp -a "$p" "$stage/$p"; done; }
copy "$nm/onnxruntime-common" "$nm/jpeg-js" "$nm/fflate" "$nm/@sinclair/typebox" \
  "$nm/onnxruntime-node/package.json" "$nm/onnxruntime-node/dist" "$nm/onnxruntime-node/bin/napi-v6/linux/x64" \
  "$nm/onnxruntime-web/package.json" "$nm/onnxruntime-web/dist/ort.node.min.mjs" "$nm/onnxruntime-web/dist/ort.webgpu.bundle.min.mjs" \
  "$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs" "$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm" \
  "$nm/webgpu/package.json" "$nm/webgpu/index.js" "$nm/webgpu/dist/linux-x64"
: > "$stage/$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"
tar -C "$stage" -cf - "$nm" | xz -T2 -6 > .gpu/nm.tar.xz
du -b .gpu/bun.xz .gpu/nm.tar.xz
