#!/usr/bin/env bash
# Runs the API conformance suite against a real `osprey serve`:
#   tests/api/run.sh OSPREY_BINARY [pytest args...]
# Creates (or reuses) a venv outside the repo with the official `ollama` and `openai`
# clients, so CI on a fresh machine needs only python3-venv and PyPI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"; shift
cache="${OSPREY_CACHE:-$HOME/.cache/osprey}"
venv="${OSPREY_TEST_VENV:-$cache/venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ollama, openai, pytest, jsonschema, rfc3339_validator" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ollama openai pytest jsonschema rfc3339-validator
fi
export OSPREY_BIN="$bin"
export PYTHONDONTWRITEBYTECODE=1  # keep the source tree clean
export OSPREY_TEST_GGUF="${OSPREY_TEST_GGUF:-$cache/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [ ! -f "$OSPREY_TEST_GGUF" ]; then
  echo "api tests: $OSPREY_TEST_GGUF missing (run tools/fetch_models.py)" >&2
  exit 1
fi
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .
