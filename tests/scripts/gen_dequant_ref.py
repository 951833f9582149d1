#!/usr/bin/env python3
"""Reference data for tests/test_dequant.cpp.

For each tensor type, writes tests/data/dequant/<type>.gguf holding
  "q"   - random blocks of that type (shape 512 x 2), and
  "ref" - their dequantization by gguf-py (`gguf.quants.dequantize`), as F32.
The C++ test requires dequantize_row to reproduce "ref" bit for bit.

Block bytes are random, except the scale fields, which are set to random finite values in a
moderate range so the reference is free of inf/NaN (random half bits would often be NaN).

Also writes q8_0_quantize.gguf: "src" (F32) and "quant" (gguf-py's Q8_0 quantization of it)
for kernels::quantize_row_q8_0.

Usage: python3 tests/scripts/gen_dequant_ref.py   (needs: pip install gguf numpy)
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "dequant")
SHAPE = (2, 512)  # numpy order: 2 rows of 512 elements

rng = np.random.default_rng(20240611)

# (offset, kind) of the scale fields in each block; "f16" is a half, "f32" a float,
# "e8m0" MXFP4's shared exponent byte.
SCALE_FIELDS = {
    T.Q4_0: [(0, "f16")],
    T.Q4_1: [(0, "f16"), (2, "f16")],
    T.Q5_0: [(0, "f16")],
    T.Q5_1: [(0, "f16"), (2, "f16")],
    T.Q8_0: [(0, "f16")],
    T.Q2_K: [(80, "f16"), (82, "f16")],
    T.Q3_K: [(108, "f16")],
    T.Q4_K: [(0, "f16"), (2, "f16")],
    T.Q5_K: [(0, "f16"), (2, "f16")],
    T.Q6_K: [(208, "f16")],
    T.Q8_K: [(0, "f32")],
    T.IQ4_NL: [(0, "f16")],
    T.IQ4_XS: [(0, "f16")],
    T.TQ1_0: [(52, "f16")],
    T.TQ2_0: [(64, "f16")],
    T.MXFP4: [(0, "e8m0")],
}

# The codebook formats, generated after everything above so adding them left the earlier
# files' random bytes unchanged. "iq1m" is IQ1_M's half scale, spread over the top nibbles of
# the four 16-bit scale words at byte 48.
IQ_SCALE_FIELDS = {
    T.IQ2_XXS: [(0, "f16")],
    T.IQ2_XS: [(0, "f16")],
    T.IQ2_S: [(0, "f16")],
    T.IQ3_XXS: [(0, "f16")],
    T.IQ3_S: [(0, "f16")],
    T.IQ1_S: [(0, "f16")],
    T.IQ1_M: [(48, "iq1m")],
}


def random_scales(n, dtype):
    # magnitudes from 2^-16 (subnormal in f16) to 4, random sign, some exact zeros
    mag = np.exp2(rng.uniform(-16.0, 2.0, size=n))
    v = mag * rng.choice([-1.0, 1.0], size=n)
    v[rng.random(n) < 0.05] = 0.0
    return v.astype(dtype)


def random_blocks(qtype):
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    n_blocks = SHAPE[0] * SHAPE[1] // block_elems
    blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off, kind in {**SCALE_FIELDS, **IQ_SCALE_FIELDS}[qtype]:
        if kind == "f16":
            blocks[:, off:off + 2] = random_scales(n_blocks, np.float16).view(np.uint8).reshape(n_blocks, 2)
        elif kind == "iq1m":
            h = random_scales(n_blocks, np.float16).view(np.uint16)
            words = blocks[:, off:off + 8].copy().view(np.uint16).reshape(n_blocks, 4)
            for w in range(4):
                words[:, w] = (words[:, w] & 0x0FFF) | (((h >> (4 * w)) & 0xF) << 12)
            blocks[:, off:off + 8] = words.view(np.uint8).reshape(n_blocks, 8)
        elif kind == "f32":
            blocks[:, off:off + 4] = random_scales(n_blocks, np.float32).view(np.uint8).reshape(n_blocks, 4)
        else:  # e8m0: include the subnormal exponents 0 and 1, stay far from overflow
            blocks[:, off] = rng.integers(0, 160, size=n_blocks, dtype=np.uint8)
            blocks[:2, off] = [0, 1]
    return blocks.reshape(SHAPE[0], -1)


def random_plain(qtype):
    n = SHAPE[0] * SHAPE[1]
    if qtype == T.F32:
        v = (rng.standard_normal(n) * np.exp2(rng.uniform(-30, 30, n))).astype(np.float32)
        return v.view(np.uint8).reshape(SHAPE[0], -1)
    # f16 / bf16: every finite bit pattern is fair game, subnormals included
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    exp_mask, exp_shift = (0x7C00, 10) if qtype == T.F16 else (0x7F80, 7)
    bad = (bits & exp_mask) == exp_mask
    bits[bad] &= ~np.uint16(1 << exp_shift)  # clear one exponent bit: now finite
    return bits.view(np.uint8).reshape(SHAPE[0], -1)


def reference(qtype, raw):
    if qtype == T.Q8_K:
        # gguf-py has no Q8_K dequantizer; Q8_K is simply d * q with a float32 d.
        blocks = raw.reshape(-1, GGML_QUANT_SIZES[T.Q8_K][1])
        d = blocks[:, 0:4].copy().view(np.float32)
        q = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
        return (d * q).reshape(SHAPE)
    return gguf.quants.dequantize(raw, qtype).reshape(SHAPE)


def write(path, tensors):
    w = gguf.GGUFWriter(path, arch="osprey-test")
    for name, arr, qtype in tensors:
        if qtype is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    plain = [T.F32, T.F16, T.BF16]
    for qtype in plain + list(SCALE_FIELDS):
        raw = random_plain(qtype) if qtype in plain else random_blocks(qtype)
        ref = np.ascontiguousarray(reference(qtype, raw), dtype=np.float32)
        if not np.isfinite(ref).all():
            sys.exit(f"{qtype.name}: reference has inf/NaN; fix the scale generator")
        write(os.path.join(OUT, qtype.name.lower() + ".gguf"), [("q", raw, qtype), ("ref", ref, None)])

    # Q8_0 quantizer: random rows plus blocks for the edge cases (all zero, exact .5 ties).
    src = (rng.standard_normal(SHAPE) * np.exp2(rng.uniform(-8, 8, (SHAPE[0], 1)))).astype(np.float32)
    src[0, :32] = 0.0
    src[0, 32:64] = np.array([127.0] + [k + 0.5 for k in range(-15, 16)], dtype=np.float32)
    quant = gguf.quants.quantize(src, T.Q8_0)
    write(os.path.join(OUT, "q8_0_quantize.gguf"), [("src", src, None), ("quant", quant, T.Q8_0)])

    for qtype in IQ_SCALE_FIELDS:
        raw = random_blocks(qtype)
        ref = np.ascontiguousarray(reference(qtype, raw), dtype=np.float32)
        if not np.isfinite(ref).all():
            sys.exit(f"{qtype.name}: reference has inf/NaN; fix the scale generator")
        write(os.path.join(OUT, qtype.name.lower() + ".gguf"), [("q", raw, qtype), ("ref", ref, None)])


if __name__ == "__main__":
    main()
