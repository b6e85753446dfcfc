#!/usr/bin/env bash
# Every test of the repository, in one command: the Rust suite (release profile, which also
# builds target/release/ccem for the Python tests that compare with the CLI), then the Python
# package in a virtual environment (created on the first run, reused after), then pytest.
#
# Needs only cargo, python3 (with venv) and the package registries: numpy, pytest and maturin
# come from PyPI. The extension is built by cargo into the workspace's target/ directory, so the
# Rust dependencies compiled by `cargo test --release` are reused.
#
# Environment: CCEM_VENV (default target/venv, inside the ignored target/), PYTHON (default
# python3), CARGO_TARGET_DIR (honoured by cargo, maturin and the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --release

venv="${CCEM_VENV:-${CARGO_TARGET_DIR:-target}/venv}"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
# maturin's build backend runs the `maturin` executable: put the venv's first on PATH.
export PATH="$(cd "$venv/bin" && pwd):$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install --quiet "numpy>=1.21" pytest "maturin>=1.9,<2"
# --no-build-isolation: build with the maturin just installed (no fresh build environment on
# every run); --force-reinstall: always the extension of this checkout (cargo rebuilds only
# what changed).
python -m pip install --quiet --no-build-isolation --no-deps --force-reinstall ./python
python -m pytest python/tests -q

# `ccem explore` in headless Chromium (needs chromium and chromedriver on PATH; without them it
# prints SKIPPED and the reason, unless CCEM_REQUIRE_BROWSER=1, as in .ci/run, where it fails).
python scripts/browser_test.py --bin "${CARGO_TARGET_DIR:-target}/release/ccem"
