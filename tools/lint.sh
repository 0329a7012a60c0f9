#!/usr/bin/env bash
# Lint, format check and type check, as CI runs them (configuration: pyproject.toml,
# [tool.ruff] and [tool.mypy]). Needs the `lint` extra: pip install -e ".[lint]".
# Run from anywhere; exits non-zero on the first failing tool.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ruff check src tests
ruff format --check src tests
mypy src
