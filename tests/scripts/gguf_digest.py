#!/usr/bin/env python3
"""A compact digest of a GGUF file: every metadata value (arrays as count + SHA-256 of their
little-endian element bytes; strings in arrays as u64 length + bytes) and every tensor's type,
shape, SHA-256 of its data and float64 sums. tests/test_convert.cpp computes the same digest
of Osprey's conversion and compares it with the digest of llama.cpp's convert_hf_to_gguf.py
output for the same checkpoint (committed under tests/data/convert/).

Usage: gguf_digest.py FILE.gguf > digest.json   (needs: gguf numpy)
"""
import hashlib
import json
import struct
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as V

SCALAR = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
          V.FLOAT32: "<f", V.BOOL: "<?", V.UINT64: "<Q", V.INT64: "<q", V.FLOAT64: "<d"}
NAMES = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32", V.INT32: "i32",
         V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string", V.ARRAY: "array", V.UINT64: "u64",
         V.INT64: "i64", V.FLOAT64: "f64"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(path):
    r = gguf.GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        t = f.types[0]
        if t == V.ARRAY:
            et = f.types[1]
            items = f.contents()
            if et == V.STRING:
                raw = b"".join(struct.pack("<Q", len(s.encode())) + s.encode() for s in items)
            else:
                raw = b"".join(struct.pack(SCALAR[et], x) for x in items)
            meta[k] = {"type": "array", "elem": NAMES[et], "n": len(items), "sha256": sha(raw)}
        else:
            v = f.contents()
            meta[k] = {"type": NAMES[t], "value": v}
    tensors = {}
    for t in r.tensors:
        data = bytes(np.asarray(t.data).tobytes())
        vals = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        tensors[t.name] = {"type": t.tensor_type.name.lower(), "ne": [int(x) for x in t.shape],
                           "sha256": sha(data), "sum": float(vals.sum()), "abs_sum": float(np.abs(vals).sum())}
    return {"metadata": meta, "tensors": tensors}


if __name__ == "__main__":
    json.dump(digest(sys.argv[1]), sys.stdout, indent=1, ensure_ascii=False)
