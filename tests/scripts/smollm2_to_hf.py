#!/usr/bin/env python3
"""SmolLM2-135M-Instruct as a Hugging Face checkpoint, rebuilt from its Q4_1 GGUF: weights
dequantized to F32, q/k rows put back in Hugging Face order (the inverse of llama.cpp's RoPE
permutation), GGUF names mapped back. Converting it with `osprey convert --outtype f32` must give
the dequantized GGUF tensors back exactly (--check), which exercises the Q/K permutation on a real
model with 9 query and 3 key/value heads.

Usage: python3 tests/scripts/smollm2_to_hf.py OUT_DIR [--check CONVERTED.gguf]
Needs: numpy, gguf; reuses make_hf_checkpoints.py for the tokenizer files.
"""
import json
import os
import sys

import numpy as np
import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_hf_checkpoints as mk  # noqa: E402

SRC = os.path.join(mk.CACHE, "SmolLM2-135M-Instruct.Q4_1.gguf")
NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
         "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
         "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def unpermute(w, n_head):
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def dequantized(r):
    out = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape)]
        out[t.name] = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
    return out


def main():
    out = sys.argv[1]
    r = gguf.GGUFReader(SRC)
    f = r.fields
    n_head = int(f["llama.attention.head_count"].contents())
    n_kv = int(f["llama.attention.head_count_kv"].contents())
    deq = dequantized(r)
    if "--check" in sys.argv:
        conv = dequantized(gguf.GGUFReader(sys.argv[sys.argv.index("--check") + 1]))
        bad = [n for n in deq if n not in conv or not np.array_equal(deq[n], conv[n])]
        print(f"{len(deq) - len(bad)}/{len(deq)} tensors identical after HF -> GGUF", "(differ: %s)" % bad[:5] if bad else "")
        sys.exit(1 if bad else 0)
    os.makedirs(out, exist_ok=True)
    tensors = {}
    for name, w in deq.items():
        parts = name.split(".")
        if parts[0] == "blk":
            hf = f"model.layers.{parts[1]}.{NAMES[parts[2]]}.{parts[3]}"
            if parts[2] == "attn_q":
                w = unpermute(w, n_head)
            elif parts[2] == "attn_k":
                w = unpermute(w, n_kv)
        else:
            hf = NAMES[parts[0]] + "." + parts[1]
        tensors[hf] = w
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
           "hidden_size": int(f["llama.embedding_length"].contents()),
           "intermediate_size": int(f["llama.feed_forward_length"].contents()),
           "num_hidden_layers": int(f["llama.block_count"].contents()), "num_attention_heads": n_head,
           "num_key_value_heads": n_kv, "max_position_embeddings": int(f["llama.context_length"].contents()),
           "rms_norm_eps": float(f["llama.attention.layer_norm_rms_epsilon"].contents()),
           "rope_theta": float(f["llama.rope.freq_base"].contents()), "vocab_size": 49152,
           "tie_word_embeddings": "lm_head.weight" not in tensors, "bos_token_id": 1, "eos_token_id": 2,
           "pad_token_id": 2, "hidden_act": "silu", "torch_dtype": "float32"}
    mk.write_json(out, "config.json", cfg)
    # Tokenizer files exactly as the tiny llama checkpoint has them (same source GGUF).
    tiny = os.path.join(mk.CACHE, "hf-checkpoints", "llama")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(tiny, name), "rb") as a, open(os.path.join(out, name), "wb") as b:
            b.write(a.read())
    mk.save_weights(out, tensors, "F32")
    print("wrote", out)


if __name__ == "__main__":
    main()
