#!/usr/bin/env bash
# Side-by-side with the PyTorch reference of the paper's encoder experiment (issue 3), on this
# machine in one run: wall time of the paper's sweep (sigmoid, N = 4..50 x 10 values of t, d = N,
# 100 steps, 1 seed) for both, the 3,000-step version for ccem, and the region means of s_pos
# over SEEDS seeds on both sides.
#
#   python3 -m venv .venv && .venv/bin/pip install torch numpy     # once; large download
#   PYTHON=.venv/bin/python bench/compare_torch.sh [SEEDS]
#
# Not part of CI (it needs torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SEEDS=${1:-5}
REF=${REF:-bench/torch_reference.py}
work=$(mktemp -d)
cargo build --release --quiet
ccem=target/release/ccem

t0=$(date +%s.%N)
$PY "$REF" sigmoid 100 4 50 10 0.1 5 1 > "$work/torch_seed1.csv"
t1=$(date +%s.%N)
$ccem sweep --mode encoder --loss sigmoid --n 4..50 --t 0.1..5:10 --out "$work/ccem100" --quiet > /dev/null
t2=$(date +%s.%N)
$ccem sweep --mode encoder --loss sigmoid --n 4..50 --t 0.1..5:10 --steps 3000 --out "$work/ccem3000" --quiet > /dev/null
t3=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$t3" <<'PYEOF'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:])
torch, ours, ours3000 = t1 - t0, t2 - t1, t3 - t2
print(f"paper's sweep, 100 steps: torch_reference.py {torch:.2f} s, ccem {ours:.2f} s: {torch/ours:.1f}x faster")
print(f"3,000 steps: ccem {ours3000:.2f} s")
PYEOF

for s in $(seq 2 "$SEEDS"); do $PY "$REF" sigmoid 100 4 50 10 0.1 5 "$s" > "$work/torch_seed$s.csv"; done
$ccem sweep --mode encoder --loss sigmoid --n 4..50 --t 0.1..5:10 --seeds "$SEEDS" --out "$work/ccem_seeds" --quiet > /dev/null
python3 bench/compare_torch.py "$work/ccem_seeds/results.csv" "$work"/torch_seed*.csv
rm -rf "$work"
