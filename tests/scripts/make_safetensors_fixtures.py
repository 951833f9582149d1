#!/usr/bin/env python3
"""Fixtures for tests/test_safetensors.cpp, written by the `safetensors` package (a writer other
than anything in Osprey) with PyTorch for the float types numpy lacks (bf16, fp8):

  tests/data/safetensors/dtypes.safetensors  one small tensor per float dtype + an int64 one
  tests/data/safetensors/dtypes.json         each tensor's values as float32 (PyTorch's .float())

Every one of the 256 FP8 bit patterns is in the file, so the test checks our FP8 decoders
against PyTorch's for all of them.

Usage: ~/.cache/osprey/refvenv/bin/python tests/scripts/make_safetensors_fixtures.py
Needs: torch, safetensors, numpy.
"""
import json
import math
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "safetensors")


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    base = torch.randn(2, 3, 4, generator=g) * 3
    all_bytes = torch.arange(256, dtype=torch.uint8)
    tensors = {
        "f32": base.clone(),
        "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16),
        "f64": base.to(torch.float64)[0],
        "f8_e4m3": all_bytes.clone().view(torch.float8_e4m3fn).reshape(16, 16),
        "f8_e5m2": all_bytes.clone().view(torch.float8_e5m2).reshape(16, 16),
        "i64": torch.arange(5, dtype=torch.int64),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(1.5),
    }
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"), metadata={"format": "pt", "note": "fixture"})

    def enc(x):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x

    ref = {}
    for name, t in tensors.items():
        if t.dtype == torch.int64:
            continue
        vals = t.float().flatten().tolist()
        ref[name] = {"shape": list(t.shape), "values": [enc(v) for v in vals]}
    with open(os.path.join(OUT, "dtypes.json"), "w") as fp:
        json.dump(ref, fp)


if __name__ == "__main__":
    main()
