#!/usr/bin/env bash
# The paper-scale runs that need a GPU, as one prepared command (chapter 8).
#
# Run it from the repository root on a machine with one CUDA GPU. It needs torch with CUDA
# and numpy/matplotlib/tqdm in the Python it finds first, and FashionMNIST: the Debian
# package dataset-fashion-mnist, or the four IDX .gz files in a folder named by $PNC_DATA
# (e.g. a carried copy of /usr/share/datasets/fashion-mnist, 30 MB).
#
#   OUT=/tmp/out bash benchmarks/paper_runs.sh                  # all three -> $OUT/results
#   OUT=/tmp/out PAPER_RUNS=hybrid bash benchmarks/paper_runs.sh   # one of them
#
# Estimated on one H100 (eager PyTorch, about 1 ms per mini-batch step; not measured yet):
# hybrid (two networks, 400 epochs of 60 000 images, 188 000 steps each) 4-7 min, fig7 about
# 5 min, transfer (5 heads x 3 seeds x 100 epochs of 30 000 images) about 6 min: where a
# command is capped at 10 minutes, run one experiment per command.
#
# Each run writes book/results-style JSON files (commit them under book/results/) and is
# capped by its own timeout, so a slow run cannot take the others down with it. The cheap
# paper-scale runs (fig3b, fig4, fig6) run on the CPU of any machine and are not repeated.
set -uo pipefail
OUT=${OUT:-book}
mkdir -p "$OUT/results"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  for exp in ${PAPER_RUNS:-hybrid fig7 transfer}; do
    start=$(date +%s)
    timeout "${RUN_TIMEOUT:-420}" python -m pncutils.reproduce "$exp" --scale paper \
      --device cuda --out "$OUT/results"
    echo "$exp: exit $? after $(( $(date +%s) - start )) s"
  done
} 2>&1 | tee "$OUT/paper_runs.log"
