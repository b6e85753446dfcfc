#!/usr/bin/env bash
# `ccem train` against the same network in PyTorch at a large size (issue 18): whole-command wall
# time and peak memory of `ccem train`, the training loop's time of bench/torch_encoder_large.py
# (both threads of a 2-core machine for each), and s_pos of the f32 run against an f64 reference.
#
# Usage: PYTHON=/path/to/python-with-torch bench/encoder_large.sh [N] [STEPS] [THREADS]
#        (defaults 1024 20 2; d = N, sigmoid loss with t = b = 3, lr 0.5)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-1024}"; steps="${2:-20}"; threads="${3:-2}"
py="${PYTHON:-python3}"
ccem="$here/target/release/ccem"
[ -x "$ccem" ] || (cd "$here" && cargo build --release --bin ccem)
echo "== ccem train --n $n --steps $steps --threads $threads (whole command)"
/usr/bin/time -f "ccem wall %e s, peak RSS %M KiB" \
  "$ccem" train --n "$n" --loss sigmoid --t 3 --steps "$steps" --threads "$threads" --format json \
  | grep -o '"s_pos_mean":[^,]*'
echo "== PyTorch, $threads threads (training loop; whole process below)"
/usr/bin/time -f "torch process wall %e s, peak RSS %M KiB" \
  "$py" "$here/bench/torch_encoder_large.py" "$n" "$threads" "$steps"
