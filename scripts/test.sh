#!/usr/bin/env bash
# Everything `make test` checks, in order; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"

echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy"
mypy swarm_lsp tests bench
echo "== generated protobuf code is current"
python scripts/check_proto.py
if [ -f editors/vscode/package.json ]; then
  echo "== VS Code extension: install, compile, lint, test, package"
  (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check)
fi
echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
