#!/usr/bin/env bash
# Runs scripts/gpu/gpu-check.ts on a bare GPU machine from the archives made by pack-gpu-bundle.sh.
# Carry: .gpu and .gl (libvulkan1 .deb). Writes $OUT/gpu-check.log.
set -u
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
export XDG_RUNTIME_DIR=/tmp LOG_LEVEL=warn
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d 2>/dev/null
mkdir -p /tmp/b /tmp/models
xz -dc .gpu/bun.xz > /tmp/b/bun && chmod +x /tmp/b/bun && xz -dc .gpu/nm.tar.xz | tar x && echo "unpacked $(du -sh node_modules | cut -f1)"
# CUDA: provider libraries for ORT 1.30 (if the image has them), and the CUDA/cuDNN libraries from the Python wheels
providers=$(find / -xdev -name 'libonnxruntime_providers_cuda.so' 2>/dev/null | head -1)
echo "cuda provider library: ${providers:-none found}"
[ -n "$providers" ] && export ORT_LIB_DIR=$(dirname "$providers")
nvlibs=$(find / -xdev -path '*site-packages/nvidia/*/lib' -type d 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${nvlibs}${LD_LIBRARY_PATH:-}"
python3 -c "import onnxruntime as o; print('python onnxruntime', o.__version__, o.get_available_providers())" 2>&1 | tail -1
timeout 120 python3 scripts/gpu/export-torch-models.py /tmp/models 2>&1 | grep -v -i warn | tail -4
[ -n "${SETUP_ONLY:-}" ] && exit 0
timeout 420 /tmp/b/bun scripts/gpu/gpu-check.ts src/inference/verification-model.onnx assets/builtin-model/model.onnx /tmp/models/*.onnx 2>&1 \
  | grep -v CleanUnusedInitializers | tee "$OUT/gpu-check.log"
