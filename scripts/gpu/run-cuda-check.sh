#!/usr/bin/env bash
# Second stage on a warm GPU machine prepared by run-on-device.sh: assembles the CUDA provider libraries
# (onnxruntime 1.29, CUDA 13, from npm `com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9`, carried in 4 parts
# to stay under the per-call limit) and runs the CUDA backend with onnxruntime-node 1.30 and then 1.29.
set -u
cd "$(dirname "$0")/../.."
export XDG_RUNTIME_DIR=/tmp LOG_LEVEL=warn
mkdir -p /tmp/ortcuda /tmp/ort129
cat /tmp/cuda.part00 /tmp/cuda.part01 /tmp/cuda.part02 .gpu/c4 | xz -dc > /tmp/ortcuda/libonnxruntime_providers_cuda.so || exit 1
xz -dc .gpu/ort129.tar.xz | tar x -C /tmp/ort129 && cp /tmp/ort129/libonnxruntime_providers_shared.so /tmp/ortcuda/
ls -la /tmp/ortcuda
nvlibs=$(find / -xdev -path '*site-packages/nvidia/*/lib' -type d 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${nvlibs}${LD_LIBRARY_PATH:-}" ORT_LIB_DIR=/tmp/ortcuda BACKENDS=cuda
ldd /tmp/ortcuda/libonnxruntime_providers_cuda.so | grep -i "not found"
models="src/inference/verification-model.onnx assets/builtin-model/model.onnx /tmp/models/mobilenet_v3_large_640.onnx /tmp/models/resnet50_640.onnx"
echo "== onnxruntime-node 1.30 core + 1.29 CUDA providers"
timeout 150 /tmp/b/bun scripts/gpu/gpu-check.ts $models 2>&1 | grep -v CleanUnused | tee "$OUT/cuda-130.log" | cut -c1-500
echo "== onnxruntime-node 1.29 core + 1.29 CUDA providers"
rm -rf node_modules/onnxruntime-node node_modules/onnxruntime-common
cp -a /tmp/ort129/node_modules/onnxruntime-node /tmp/ort129/node_modules/onnxruntime-common node_modules/
timeout 150 /tmp/b/bun scripts/gpu/gpu-check.ts $models 2>&1 | grep -v CleanUnused | tee "$OUT/cuda-129.log" | cut -c1-500
