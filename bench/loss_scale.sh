#!/usr/bin/env bash
# Time and peak memory of the loss + gradient at SigLIP's batch size (issue 2's benchmark).
# One process per measurement, so each peak-memory figure is that path's own.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example loss_scale
bin=target/release/examples/loss_scale
$bin 0 0 peak
$bin 0 0 peak32
$bin 4096 768 dense
$bin 4096 768 blocked 256
$bin 4096 768 blocked32 256
$bin 4096 768 dense32
$bin 4096 768 blocked 256 infonce
$bin 32768 768 blocked32 256
$bin 32768 768 blocked 256
