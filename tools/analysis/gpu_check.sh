#!/usr/bin/env bash
# Copyright (c) densecl_plugin contributors. All rights reserved.
#
# The step benchmark on one CUDA GPU in under 5 minutes: DenseCL against
# MoCo v2 (same ResNet-50, same weights, interleaved steps) at the paper's
# per-GPU setting (32 images of 224 px, K = 65536), in float32 and with AMP
# (float16 with loss scaling, and bfloat16), plus channels-last; and the dense
# loss alone. It checks the paper's "only <1% slower than MoCo v2" claim on
# this GPU: see `DenseCL / MoCo v2 time` in the tables, against the FLOP
# ratio that `tools/analysis/flops.py` computes (its figure, and every other
# measured one, is in docs/benchmarks.md).
#
#   bash tools/analysis/gpu_check.sh            # results in work_dirs/gpu_check
#   COMPILE=1 bash tools/analysis/gpu_check.sh  # also torch.compile (+2-4 min)
#
# Without a CUDA device it runs the same commands with tiny settings on the
# CPU (ResNet-18, 64 px, 1 step), which only checks that the script works.
set -euo pipefail

cd "$(dirname "$0")/../.."
PY=${PY:-python}
OUT=${OUT:-work_dirs/gpu_check}
mkdir -p "$OUT"

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    DEVICE=cuda
    SIZE=(--depth 50 --batch 32 --size 224 --queue-len 65536)
    STEPS=(--iters 20 --warmup 5)
    AMP_DTYPES=(fp16 bf16)
    EXTRA=()
    "$PY" -c 'import torch; print("GPU:", torch.cuda.get_device_name(0),
        "| torch", torch.__version__, "| CUDA", torch.version.cuda,
        "| cuDNN", torch.backends.cudnn.version())'
else
    echo "No CUDA device: CPU fallback with tiny settings (checks the script, not the claim)."
    DEVICE=cpu
    SIZE=(--depth 18 --batch 4 --size 64 --queue-len 1024)
    STEPS=(--iters 1 --warmup 1)
    AMP_DTYPES=(bf16)  # float16 autocast needs loss scaling on a GPU
    EXTRA=(--no-peak)  # the CPU memory profiler is slow; CUDA's is free
fi

OPTIONS=(amp channels_last)
if [[ "${COMPILE:-0}" == 1 ]]; then
    OPTIONS+=(compile)
fi

start=$SECONDS
# 1. fp32: step time, peak memory, dense loss alone (plain vs frugal)
"$PY" tools/analysis/benchmark_step.py --device "$DEVICE" "${SIZE[@]}" \
    "${STEPS[@]}" --json "$OUT/fp32.json" | tee "$OUT/fp32.txt"
# 2. each option alone and all together, per AMP dtype
for dtype in "${AMP_DTYPES[@]}"; do
    "$PY" tools/analysis/benchmark_step.py --device "$DEVICE" "${SIZE[@]}" \
        "${STEPS[@]}" --options "${OPTIONS[@]}" --amp-dtype "$dtype" \
        ${EXTRA[@]+"${EXTRA[@]}"} --json "$OUT/options_$dtype.json" \
        | tee "$OUT/options_$dtype.txt"
done

"$PY" - "$OUT" "${AMP_DTYPES[@]}" <<'EOF'
import json, os.path as osp, sys
out, dtypes = sys.argv[1], sys.argv[2:]
print('\nDenseCL / MoCo v2 step time (paper: < 1.01):')
with open(osp.join(out, 'fp32.json')) as f:
    print(f"  fp32 (benchmark_step): x{json.load(f)['steps']['time_ratio']:.3f}")
for dtype in dtypes:
    with open(osp.join(out, f'options_{dtype}.json')) as f:
        res = json.load(f)
    for name, r in res['variants'].items():
        print(f"  {name:28s} amp={dtype}: x{r['time_ratio']:.3f} median, "
              f"x{r['time_ratio_best']:.3f} best;  DenseCL "
              f"{r['DenseCL']['images_per_s']:8.1f} img/s  MoCo v2 "
              f"{r['MoCoV2']['images_per_s']:8.1f} img/s (medians)")
EOF
echo "gpu_check: $((SECONDS - start)) s, results in $OUT"
