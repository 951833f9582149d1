#!/usr/bin/env python3
"""Random-weight GGUF models for speed benchmarks (speed does not depend on the values).

  python3 bench/make_bench_models.py [--out DIR] [--shapes tinyllama-1.1b smollm2-135m] [--types f16 q8_0 q4_0 q4_k_m]

Shapes follow real models (TinyLlama 1.1B, SmolLM2 135M) with the llama architecture; the
tokenizer is copied from the SmolLM2 test model (its vocabulary size replaces the shape's),
so both Osprey and llama.cpp load the files. Quantization uses the `gguf` package; Q4_K_M,
a mix of K-quants gguf cannot write, comes from the F16 file through `osprey quantize`
(build/tools/osprey, or $OSPREY_BIN). Output goes to
$OSPREY_CACHE/bench (default ~/.cache/osprey/bench), never into the repo.
"""
import argparse, os, subprocess
import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as T
from gguf.quants import quantize

CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
SHAPES = {  # hidden, layers, heads, kv heads, ffn
    "tinyllama-1.1b": (2048, 22, 32, 4, 5632),
    "smollm2-135m": (576, 30, 9, 3, 1536),
}
TYPES = {"f16": T.F16, "q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0}


def copy_tokenizer(w, src):
    r = GGUFReader(src)
    for key, field in r.fields.items():
        if not key.startswith("tokenizer.ggml."):
            continue
        val = field.contents()
        if key == "tokenizer.ggml.tokens": w.add_token_list(val)
        elif key == "tokenizer.ggml.merges": w.add_token_merges(val)
        elif key == "tokenizer.ggml.token_type": w.add_token_types(val)
        elif key == "tokenizer.ggml.model": w.add_tokenizer_model(val)
        elif key == "tokenizer.ggml.pre": w.add_tokenizer_pre(val)
        elif key == "tokenizer.ggml.bos_token_id": w.add_bos_token_id(val)
        elif key == "tokenizer.ggml.eos_token_id": w.add_eos_token_id(val)
        elif key == "tokenizer.ggml.add_bos_token": w.add_add_bos_token(val)
    return len(r.fields["tokenizer.ggml.tokens"].contents())


def make(shape, tname, out_dir, rng):
    E, L, H, HKV, F = SHAPES[shape]
    path = os.path.join(out_dir, f"{shape}-{tname}.gguf")
    if os.path.exists(path):
        return path
    tmp = path + ".tmp"
    w = GGUFWriter(tmp, "llama")
    V = copy_tokenizer(w, os.path.join(CACHE, "SmolLM2-135M-Instruct.Q4_1.gguf"))
    w.add_name(f"{shape} random {tname}")
    w.add_block_count(L); w.add_context_length(4096); w.add_embedding_length(E)
    w.add_feed_forward_length(F); w.add_head_count(H); w.add_head_count_kv(HKV)
    w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0); w.add_vocab_size(V)
    qt = TYPES[tname]

    def mat(name, rows, cols, typ=qt):
        a = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02)
        if typ == T.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, quantize(a, typ), raw_dtype=typ)

    def vec(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    mat("token_embd.weight", V, E, T.Q8_0 if qt != T.F16 else T.F16)
    vec("output_norm.weight", E)
    D = E // H
    for l in range(L):
        p = f"blk.{l}."
        vec(p + "attn_norm.weight", E); vec(p + "ffn_norm.weight", E)
        mat(p + "attn_q.weight", E, E); mat(p + "attn_k.weight", HKV * D, E); mat(p + "attn_v.weight", HKV * D, E)
        mat(p + "attn_output.weight", E, E)
        mat(p + "ffn_gate.weight", F, E); mat(p + "ffn_up.weight", F, E); mat(p + "ffn_down.weight", E, F)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    os.replace(tmp, path)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(CACHE, "bench"))
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES))
    ap.add_argument("--types", nargs="+", default=["f16", "q8_0", "q4_0", "q4_k_m"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    osprey = os.environ.get("OSPREY_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                       "tools", "osprey"))
    for s in a.shapes:
        for t in a.types:
            if t == "q4_k_m":
                src = os.path.join(a.out, f"{s}-f16.gguf")
                if not os.path.exists(src):
                    print(make(s, "f16", a.out, rng), flush=True)
                dst = os.path.join(a.out, f"{s}-q4_k_m.gguf")
                subprocess.run([osprey, "quantize", src, dst, "Q4_K_M"], check=True)
                print(dst, flush=True)
                continue
            print(make(s, t, a.out, rng), flush=True)


if __name__ == "__main__":
    main()
