#!/usr/bin/env python3
"""Seed corpora: for fuzz_gguf a few tiny valid GGUF files written by gguf-py, for
fuzz_safetensors a few small files written by the `safetensors` package (writers other than
ours, so the seeds do not share our habits). Keep each corpus under 20 KB.

Usage: python3 tests/fuzz/make_corpus.py   (needs: pip install gguf numpy safetensors)
"""
import os
import shutil

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf")
ST_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def write(name, build, alignment=None):
    w = gguf.GGUFWriter(os.path.join(OUT, name), arch="llama")
    if alignment:
        w.add_custom_alignment(alignment)
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def kv_types(w):
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -300)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 0.25)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "hello")
    w.add_uint64("t.u64", 1 << 40)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 1e-300)
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_f32", [0.5, 1.5])
    w.add_array("t.arr_str", ["a", "bc", ""])
    w.add_array("t.arr_bool", [True, False])
    w.add_array("t.nested", [[1, 2], [3]])


def tensors(w):
    rng = np.random.default_rng(1)
    w.add_tensor("f32", np.arange(4, dtype=np.float32))
    w.add_tensor("f16", np.ones((2, 8), dtype=np.float16))
    w.add_tensor("i32", np.array([1, 2, 3], dtype=np.int32))
    for name, qt, n in (("q4_0", T.Q4_0, 32), ("q8_0", T.Q8_0, 64)):
        blocks = gguf.quants.quantize(rng.standard_normal((1, n)).astype(np.float32), qt)
        w.add_tensor(name, blocks, raw_dtype=qt)
    # gguf-py cannot quantize K-quants; the reader does not care what the bytes are.
    for name, qt in (("q4_k", T.Q4_K), ("q6_k", T.Q6_K)):
        size = gguf.constants.GGML_QUANT_SIZES[qt][1]
        w.add_tensor(name, rng.integers(0, 256, (1, size), dtype=np.uint8), raw_dtype=qt)


def safetensors_seeds():
    from safetensors.numpy import save_file
    os.makedirs(ST_OUT, exist_ok=True)
    rng = np.random.default_rng(2)
    save_file({}, os.path.join(ST_OUT, "empty.safetensors"))
    save_file({"w": rng.standard_normal((4, 8)).astype(np.float32)}, os.path.join(ST_OUT, "one_f32.safetensors"),
              metadata={"format": "pt"})
    save_file({"a.weight": rng.standard_normal((3, 5)).astype(np.float16),
               "a.bias": np.zeros(0, dtype=np.float32),
               "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
               "mask": np.array([True, False]),
               "s": np.array(2.5, dtype=np.float64),
               "u8": np.arange(16, dtype=np.uint8)}, os.path.join(ST_OUT, "mixed.safetensors"))
    # BF16 and FP8 need PyTorch to write; reuse the reader test's fixture (make_safetensors_fixtures.py).
    shutil.copy(os.path.join(os.path.dirname(OUT), "..", "..", "data", "safetensors", "dtypes.safetensors"),
                os.path.join(ST_OUT, "fp8_bf16.safetensors"))


def main():
    safetensors_seeds()
    os.makedirs(OUT, exist_ok=True)
    write("minimal.gguf", lambda w: None)
    write("kv_types.gguf", kv_types)
    write("tensors.gguf", tensors)
    write("tensors_align64.gguf", lambda w: (w.add_string("general.name", "x"), tensors(w)), alignment=64)
    # GGUF v2: same layout as v3 for little-endian files, so patch the version field.
    with open(os.path.join(OUT, "tensors.gguf"), "rb") as f:
        data = bytearray(f.read())
    data[4:8] = (2).to_bytes(4, "little")
    with open(os.path.join(OUT, "tensors_v2.gguf"), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
