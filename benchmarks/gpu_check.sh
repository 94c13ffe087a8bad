#!/usr/bin/env bash
# The prepared device script: run it on a machine with one CUDA GPU, e.g. through the
# device tool, from the repository root. It needs torch with CUDA and the package's
# dependencies (numpy, matplotlib, tqdm, pytest) in the Python it finds first.
# Results go to $OUT (or benchmarks/results) and the log to $OUT/gpu_check.log.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  # 1. the CUDA variants of the unit tests
  python -m pytest -q -p no:cacheprovider tests/test_metrics.py tests/test_models.py \
    tests/test_training.py -k "cuda or theory" 2>&1 | tail -3
  # 2. metrics at the GPU size (N = 50 000, D = 1 024, L = 8)
  timeout 180 python benchmarks/metrics_bench.py --device cuda --out "$OUT"
  # 3. the paper's hybrid: eager, compiled, CUDA graphs (3 timed epochs each)
  for mode in "" "--compile" "--cuda-graphs"; do
    timeout 240 python benchmarks/train_bench.py --device cuda --epochs 3 $mode \
      --out "$OUT/train_bench-cuda${mode//--/-}.json"
  done
} 2>&1 | tee "$OUT/gpu_check.log"
