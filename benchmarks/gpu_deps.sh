#!/usr/bin/env bash
# Copy the pure-Python OpenMMLab stack (mmengine, mmcv-lite, mmaction2 1.2.0 and their small
# pure-Python dependencies) from this machine's environment into .gpu_deps/, for a GPU machine
# whose image has a CUDA torch (and triton, opencv) but no network. gpu_suite.sh puts
# .gpu_deps on PYTHONPATH. Run here, in the environment of `pip install -e '.[test]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(python3 -c 'import mmengine, os; print(os.path.dirname(os.path.dirname(mmengine.__file__)))')
rm -rf .gpu_deps && mkdir -p .gpu_deps
for pkg in mmengine mmcv mmaction addict yapf termcolor importlib_metadata zipp rich pygments \
           markdown_it mdurl platformdirs einops; do
    if [ -d "$site/$pkg" ]; then cp -r "$site/$pkg" .gpu_deps/; fi
done
# packages that read their own version through importlib.metadata need their dist-info
for dist in "$site"/mmengine-*.dist-info "$site"/mmcv_lite-*.dist-info "$site"/mmaction2-*.dist-info; do
    if [ -d "$dist" ]; then cp -r "$dist" .gpu_deps/; fi
done
find .gpu_deps -name __pycache__ -prune -exec rm -rf {} +
du -sh .gpu_deps
