#!/bin/sh
# Regenerates the tiny Hugging Face checkpoints the converter tests read
# ($OSPREY_CACHE or ~/.cache/osprey, /hf-checkpoints) with tests/scripts/make_hf_checkpoints.py
# in a venv of its own (numpy, gguf; no torch), then checks their SHA-256 against
# tests/data/convert/checkpoints.sha256: the committed reference logits were computed from
# exactly these bytes. Skips the work when the stamp says the script has not changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${OSPREY_CACHE:-$HOME/.cache/osprey}
venv=$cache/venv-convert
out=$cache/hf-checkpoints
script=$repo/tests/scripts/make_hf_checkpoints.py
sums=$repo/tests/data/convert/checkpoints.sha256

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import numpy, gguf" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "numpy>=1.26" "gguf>=0.10"
fi
stamp=$out/.stamp
want=$(cat "$script" "$sums" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$out"
  "$venv/bin/python" "$script" "$out"
fi
cd "$out"
if ! sha256sum --quiet -c "$sums"; then
  echo "make_checkpoints.sh: the regenerated checkpoints differ from the ones the references were made from" >&2
  echo "(numpy's generator or the source GGUFs changed?); rerun tests/scripts/gen_convert_ref.py" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "checkpoints ok: $out"
