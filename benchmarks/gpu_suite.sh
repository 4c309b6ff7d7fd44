#!/usr/bin/env bash
# The GPU checks and figures in one run (used on the lent H100/H200 machine, whose image has
# torch but not the OpenMMLab packages: put mmengine, mmcv-lite, addict, yapf, termcolor and,
# for the MMAction2 comparison, mmaction2 on PYTHONPATH, e.g. copied into .gpu_deps/).
# Writes JSON and logs under ${OUT:-gpu_out}.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD/.gpu_deps:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())' | tee -a "$out/gpu.txt"
TSMNET_TEST_DEVICE=cuda timeout 150 python3 -m pytest -q -p no:cacheprovider \
    tests/test_cuda.py tests/test_fused.py tests/test_numerics.py 2>&1 | tail -15 | tee "$out/tests.txt"
for args in "--dtype fp32" "--dtype bf16 --channels-last" "--dtype fp32 --size 224 --batch 8" \
            "--dtype bf16 --channels-last --size 224 --batch 8"; do
    name=$(echo "$args" | tr -d '-' | tr ' ' '_')
    timeout 90 python3 -m tsmnet.cli bench --device cuda $args --repeats 11 \
        --json "$out/bench_$name.json" 2>&1 | grep -v Warning | tee "$out/bench_$name.txt"
done
timeout 60 python3 benchmarks/bench_stream.py --device cuda 2>&1 | tail -5 | tee "$out/stream.txt"
