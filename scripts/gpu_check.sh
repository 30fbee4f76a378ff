#!/bin/bash
# The GPU check of the evaluation nets (issue 5), as one short script for a lent GPU machine:
# each net's training step at batch 10 and 100, 8×112×112, float32 and bf16 autocast, in clips/s
# and as a fraction of the device's dense bf16 peak. Rows land in $OUT as they are measured.
# Expect well under 5 minutes on an H100/H200 (16 rows of 3 warm-up + 10 timed steps).
set -euo pipefail
out=${OUT:-.}
python -c "import vdcbench" 2>/dev/null || pip install -q -e . -c .ci/constraints.txt
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
vdcbench step-throughput --device cuda --batch 10,100 --frames 8 --crop 112 \
    --precision float32,bf16 --json "$out/gpu-step-throughput.json"
