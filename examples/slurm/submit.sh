#!/usr/bin/env bash
# Queues the sweep as a job array of $SHARDS tasks and the merge as a job that starts once every
# task has succeeded. Run from the repository root:
#   SHARDS=8 OUT=runs/paper CCEM=target/release/ccem examples/slurm/submit.sh
set -euo pipefail
here=$(dirname "$0")
SHARDS=${SHARDS:-4}
export SHARDS
array=$(sbatch --parsable --export=ALL --array=0-$((SHARDS - 1)) "$here/sweep.sbatch")
sbatch --export=ALL --dependency=afterok:"$array" "$here/merge.sbatch"
