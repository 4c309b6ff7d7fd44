#!/usr/bin/env bash
# Every GPU check and figure of issue 13 in one run: `bash benchmarks/gpu_suite.sh`.
#
# Needs a CUDA torch with triton (PyTorch's CUDA wheels bring it). The OpenMMLab packages
# (pure Python: mmengine, mmcv-lite, mmaction2 1.2.0 for the MMAction2 comparison) come from
# .gpu_deps/, which `bash benchmarks/gpu_deps.sh` fills on a machine that has them installed
# (copy it along with the checkout). Writes logs and JSON under ${OUT:-gpu_out}.
#
# Figures (ResNet-50, T=8; 16x3x112x112 and 64x3x224x224; fp32, and bf16 channels-last):
#   bench_*.json    shift fwd / clone, fwd+bwd / mul fwd+bwd, in-place shift + undo / clone,
#                   TSM / no shift (inference, train step), tsmnet / MMAction2 ResNetTSM
#   compile_*.json  compiled TSM / compiled no shift, inference and train step
#   bounds_*.json   bytes moved against the copy's bandwidth, kernel launches per call
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD/.gpu_deps:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())' | tee -a "$out/gpu.txt"
python3 -m tsmnet.cli info --backends | tee -a "$out/gpu.txt"

# 1. correctness on the GPU: the Triton kernels (compiled, not interpreted), the fused conv,
#    numerics and the model on CUDA against the CPU
TSMNET_TEST_DEVICE=cuda timeout 300 python3 -m pytest -q -p no:cacheprovider -x \
    tests/shift/test_triton_backend.py tests/shift/test_fused_conv.py \
    tests/shift/test_fast_paths.py tests/test_cuda.py 2>&1 | tail -15 | tee "$out/tests.txt"

# 2. eager figures, side by side in one run each
for args in "--dtype fp32" "--dtype bf16 --channels-last" \
            "--dtype fp32 --size 224 --batch 8" "--dtype bf16 --channels-last --size 224 --batch 8"; do
    name=$(echo "$args" | tr -d '-' | tr ' ' '_')
    timeout 240 python3 -m tsmnet.cli bench --device cuda $args --repeats 11 \
        --json "$out/bench_$name.json" 2>&1 | grep -v Warning | tee "$out/bench_$name.txt"
done

# 3. compiled against compiled (inference and a train step)
for args in "--dtype fp32 --size 224 --batch 8" "--dtype bf16 --channels-last --size 224 --batch 8"; do
    for mode in "" "--train"; do
        name=$(echo "$args $mode" | tr -d '-' | tr ' ' '_')
        timeout 300 python3 benchmarks/bench_compile.py --device cuda $args $mode --repeats 11 \
            --json "$out/compile_$name.json" 2>&1 | grep -v Warning \
            | tail -8 | tee "$out/compile_$name.txt"
    done
done

# 4. what bounds the shift: bandwidth and launches per call
for args in "--dtype fp32" "--dtype bf16 --channels-last"; do
    name=$(echo "$args" | tr -d '-' | tr ' ' '_')
    timeout 120 python3 benchmarks/gpu_bounds.py --device cuda $args 2>&1 | grep -v Warning \
        | tee "$out/bounds_$name.txt"
done
echo "gpu_suite: done; results in $out/"
