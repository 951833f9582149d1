#!/usr/bin/env python3
"""Reference data for tests/test_quantize.cpp -> tests/data/quantize/ref.gguf.

Tensors:
  "src"           F32 rows (n_rows x 768): synthetic rows (gaussian, heavy-tailed, outliers,
                  all-zero, constant, tiny, huge) and real weight rows (Qwen2.5-Coder-0.5B's
                  Q8_0 tensors, dequantized; skipped with a warning if the model is absent).
  "imp"           F32 (768): a per-column importance row (log-normal), as an imatrix holds.
  "gguf.<type>"   gguf-py's quantization of "src" for the types gguf-py can quantize
                  (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): the C++ quantizers must match byte for byte.
  "llama.<type>", "llama_imp.<type>"
                  llama.cpp's quantization of "src" (ggml_quantize_chunk from the libggml-base
                  that ships with the llama-cpp-python package) without "imp" for the K-quant
                  and IQ4 types, and with it for those and Q4_0/Q4_1/Q5_0/Q5_1: the test
                  compares Osprey's round-trip error against these (llama.cpp is the bar,
                  there is no byte-exact reference).

Usage: python3 tests/scripts/gen_quantize_ref.py   (needs numpy, gguf, llama-cpp-python)
"""
import ctypes
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "quantize", "ref.gguf")
N = 768
MODEL = os.path.join(os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey")),
                     "qwen2.5-coder-0.5b-instruct.gguf")

rng = np.random.default_rng(20261121)


def synthetic_rows():
    rows = [
        rng.normal(0, 0.02, N),
        rng.normal(0, 1.0, N),
        rng.standard_t(3, N) * 0.05,
        rng.normal(0.01, 0.02, N),  # biased: affine formats need a non-zero min
        np.abs(rng.normal(0, 0.05, N)),  # all positive
        np.zeros(N),
        np.full(N, -0.375),
        rng.normal(0, 1e-6, N),  # half-precision subnormal scales
        rng.normal(0, 300.0, N),
    ]
    r = rng.normal(0, 0.02, N)
    r[rng.choice(N, 6, replace=False)] = rng.choice([-1, 1], 6) * 0.5  # rare outliers
    rows.append(r)
    return rows


def real_rows(n_rows=6):
    if not os.path.exists(MODEL):
        print(f"warning: {MODEL} not found, no real weight rows", file=sys.stderr)
        return []
    r = gguf.GGUFReader(MODEL)
    out = []
    for t in r.tensors:
        if t.tensor_type == T.Q8_0 and t.shape[0] >= N and len(t.shape) == 2:
            w = gguf.quants.dequantize(t.data, t.tensor_type)
            for i in range(0, w.shape[0], max(1, w.shape[0] // 3))[:3]:
                out.append(w[i, :N])
        if len(out) >= n_rows:
            break
    return out[:n_rows]


def ggml_lib():
    import llama_cpp
    lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]
    return lib


def llama_quantize(lib, qtype, src, imp):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows = src.shape[0]
    dst = np.zeros(rows * (N // block) * size, dtype=np.uint8)
    src = np.ascontiguousarray(src, dtype=np.float32)
    imp_p = imp.ctypes.data if imp is not None else None
    n = lib.ggml_quantize_chunk(int(qtype), src.ctypes.data, dst.ctypes.data, 0, rows, N, imp_p)
    assert n == dst.size, (n, dst.size)
    return dst.reshape(rows, -1)


def main():
    src = np.stack(synthetic_rows() + real_rows()).astype(np.float32)
    imp = np.exp(rng.normal(0, 1.0, N)).astype(np.float32)
    w = gguf.GGUFWriter(OUT, "quantize-ref")
    w.add_tensor("src", src)
    w.add_tensor("imp", imp)
    for qt in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        q = gguf.quants.quantize(src, qt)
        w.add_tensor("gguf." + qt.name.lower(), q, raw_dtype=qt)
    lib = ggml_lib()
    for qt in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL, T.IQ4_XS):
        w.add_tensor("llama." + qt.name.lower(), llama_quantize(lib, qt, src, None), raw_dtype=qt)
    for qt in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL, T.IQ4_XS):
        w.add_tensor("llama_imp." + qt.name.lower(), llama_quantize(lib, qt, src, imp), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT}: {src.shape[0]} rows x {N}")


if __name__ == "__main__":
    main()
