#!/usr/bin/env python3
"""An independent float64 reference: the forward pass written out in numpy over weights
dequantized by the `gguf` package. llama.cpp (gen_golden.py) quantizes activations to 8 bits
inside its CPU matmuls, so it sits a few tenths (Gemma 3: up to ~3) of a logit away from the
exact result; this script gives the exact result for the same weights, so the engine can be
held to a tight tolerance. Output format matches gen_golden.py (no greedy part).
Run: python3 tests/scripts/gen_numpy_ref.py   (needs numpy, gguf; models from tools/fetch_models.py)
"""
import json, os, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden")
GOLDEN_CASES = {  # which gen_golden.py cases to recompute exactly (by index)
    "SmolLM2-135M-Instruct.Q4_1.gguf": [0, 2],
    "qwen2.5-coder-0.5b-instruct.gguf": [0, 2],
    "gemma-3-270m-q4_k_m.gguf": [1, 3, 4],  # 4: the long prompt, past the 512-token window
}
TOPK = 10


def forward(path, ids):
    r = GGUFReader(path)
    def field(k, d=None):
        f = r.fields.get(k)
        return d if f is None else f.contents()
    arch = field("general.architecture")
    T = {t.name: t for t in r.tensors}
    cache = {}
    def W(name):
        if name not in cache:
            t = T[name]
            a = dequantize(t.data, t.tensor_type).astype(np.float64)
            cache[name] = a.reshape(list(reversed([int(x) for x in t.shape])))
        return cache[name]
    E = field(f"{arch}.embedding_length"); L = field(f"{arch}.block_count"); H = field(f"{arch}.attention.head_count")
    HKV = field(f"{arch}.attention.head_count_kv", H); eps = field(f"{arch}.attention.layer_norm_rms_epsilon")
    D = field(f"{arch}.attention.key_length", E // H); base = field(f"{arch}.rope.freq_base", 10000.0)
    swa = field(f"{arch}.attention.sliding_window", 0)
    def rms(x, w): return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
    def rope(x, pos, b, neox):  # x [T, H, D]
        half = D // 2
        inv = b ** (-np.arange(half) * 2.0 / D)
        th = np.outer(pos, inv)[:, None, :]
        c, s = np.cos(th), np.sin(th)
        y = x.copy()
        if neox:
            x0, x1 = x[..., :half], x[..., half:]
            y[..., :half] = x0 * c - x1 * s; y[..., half:] = x0 * s + x1 * c
        else:
            x0, x1 = x[..., 0::2], x[..., 1::2]
            y[..., 0::2] = x0 * c - x1 * s; y[..., 1::2] = x0 * s + x1 * c
        return y
    gelu = lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    silu = lambda x: x / (1 + np.exp(-x))
    n = len(ids); pos = np.arange(n)
    emb = W("token_embd.weight")
    x = emb[ids]
    if arch == "gemma3": x = x * np.sqrt(E)
    for l in range(L):
        p = f"blk.{l}."
        h = rms(x, W(p + "attn_norm.weight"))
        q = h @ W(p + "attn_q.weight").T; k = h @ W(p + "attn_k.weight").T; v = h @ W(p + "attn_v.weight").T
        if arch == "qwen2":
            q += W(p + "attn_q.bias"); k += W(p + "attn_k.bias"); v += W(p + "attn_v.bias")
        q = q.reshape(n, H, D); k = k.reshape(n, HKV, D); v = v.reshape(n, HKV, -1)
        is_swa = arch == "gemma3" and (l + 1) % 6 != 0
        b = 10000.0 if is_swa else base
        if arch == "gemma3":
            q = rms(q, W(p + "attn_q_norm.weight")); k = rms(k, W(p + "attn_k_norm.weight"))
        neox = arch != "llama"
        q = rope(q, pos, b, neox); k = rope(k, pos, b, neox)
        g = H // HKV
        out = np.zeros((n, H, v.shape[-1]))
        for hh in range(H):
            s = q[:, hh, :] @ k[:, hh // g, :].T / np.sqrt(D)
            mask = np.tril(np.ones((n, n), bool))
            if is_swa: mask &= (pos[:, None] - pos[None, :]) < swa
            s = np.where(mask, s, -np.inf); s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            out[:, hh, :] = s @ v[:, hh // g, :]
        a = out.reshape(n, -1) @ W(p + "attn_output.weight").T
        if arch == "gemma3": a = rms(a, W(p + "post_attention_norm.weight"))
        x = x + a
        h = rms(x, W(p + "ffn_norm.weight"))
        gt = h @ W(p + "ffn_gate.weight").T; up = h @ W(p + "ffn_up.weight").T
        f = ((gelu(gt) if arch == "gemma3" else silu(gt)) * up) @ W(p + "ffn_down.weight").T
        if arch == "gemma3": f = rms(f, W(p + "post_ffw_norm.weight"))
        x = x + f
    x = rms(x, W("output_norm.weight"))
    out = W("output.weight") if "output.weight" in T else emb
    logits = x @ out.T
    return logits


def main():
    for name, idx in GOLDEN_CASES.items():
        golden = json.load(open(os.path.join(OUT, name + ".json")))
        cases = []
        for i in idx:
            c = golden["cases"][i]
            ids = c["tokens"]
            logits = forward(os.path.join(CACHE, name), ids)
            positions = range(len(ids)) if len(ids) <= 200 else sorted(set(range(0, len(ids), 8)) | set(range(len(ids) - 16, len(ids))))
            top = {}
            for p in positions:
                order = np.argsort(-logits[p], kind="stable")[:TOPK]
                top[str(p)] = [[int(j), float(logits[p][j])] for j in order]
            cases.append({"prompt": c["prompt"], "tokens": ids, "greedy": [], "greedy_margins": [],
                          "n_eval": len(ids), "top_logits": top})
            print(name, i, len(ids), file=sys.stderr)
        with open(os.path.join(OUT, name + ".numpy.json"), "w") as f:
            json.dump({"model": name, "reference": "numpy float64 forward (gen_numpy_ref.py)", "cases": cases}, f,
                      separators=(",", ":"))


if __name__ == "__main__":
    main()
