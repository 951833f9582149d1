#!/usr/bin/env python3
"""Reference per-tensor type choices for tests/test_quantize_model.cpp.

Quantizes a real model (SmolLM2-135M, the F32 GGUF `osprey quantize --allow-requantize ...
F32` makes from the cached Q4_1 file) with llama.cpp's own quantizer
(llama_cpp.llama_model_quantize, the llama-cpp-python package) to every mix Osprey offers,
with and without an importance matrix flag where that changes the rules, and records which
type llama.cpp gave each tensor, with the tensor shapes and the metadata the rules read, in
tests/data/quantize/mix_types.json. The C++ test replays the choices with
osprey::quantize::choose_type and requires the same type for every tensor.

Usage: python3 tests/scripts/gen_quantize_mix_ref.py [SOURCE.gguf]
"""
import ctypes
import json
import os
import sys
import tempfile

import gguf
import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "quantize", "mix_types.json")
CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
SOURCE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(CACHE, "quant", "smollm2-135m-f32.gguf")

MIXES = {  # Osprey's name -> LLAMA_FTYPE_*
    "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9, "Q8_0": 7, "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12,
    "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25,
    "IQ4_XS": 30, "F16": 1, "BF16": 32,
}


def main():
    src = gguf.GGUFReader(SOURCE)
    arch = bytes(src.fields["general.architecture"].parts[-1]).decode()

    def meta(key):
        f = src.fields.get(f"{arch}.{key}")
        return int(f.parts[f.data[0]][0]) if f else 0

    out = {
        "source": os.path.basename(SOURCE),
        "block_count": meta("block_count"),
        "head_count": meta("attention.head_count"),
        "head_count_kv": meta("attention.head_count_kv"),
        "tensors": [{"name": t.name, "ne": [int(x) for x in t.shape]} for t in src.tensors],
        "mixes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, ftype in MIXES.items():
            dst = os.path.join(tmp, name + ".gguf")
            p = llama_cpp.llama_model_quantize_default_params()
            p.ftype = ftype
            p.nthread = 2
            rc = llama_cpp.llama_model_quantize(SOURCE.encode(), dst.encode(), ctypes.byref(p))
            if rc != 0:
                sys.exit(f"llama_model_quantize {name} failed: {rc}")
            r = gguf.GGUFReader(dst)
            out["mixes"][name] = {t.name: t.tensor_type.name.lower() for t in r.tensors}
            os.remove(dst)
            print(name, "done", file=sys.stderr)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=False)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
