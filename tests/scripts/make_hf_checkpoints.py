#!/usr/bin/env python3
"""Tiny random-init Hugging Face checkpoints for the converter tests: llama, qwen2 and gemma3,
each with config.json, tokenizer files and model.safetensors, laid out as `transformers` saves
them. Numpy only (no torch), deterministic (fixed seeds), so CI regenerates them bit for bit.

The weights are random; the tokenizers are real: rebuilt from the GGUF test models (SmolLM2's
byte-level BPE for llama, Qwen2.5's for qwen2, Gemma 3's SentencePiece model for gemma3), so
converting them back must give those GGUFs' tokenizer fields again. Each checkpoint stores its
weights in a different float type (llama F32, qwen2 BF16, gemma3 F16) to cover the read paths.

Usage: make_hf_checkpoints.py [OUT_DIR]   (default $OSPREY_CACHE or ~/.cache/osprey, /hf-checkpoints)
Needs: numpy, gguf; the GGUF test models from tools/fetch_models.py.
"""
import json
import os
import struct
import sys

import numpy as np
import gguf

CACHE = os.environ.get("OSPREY_CACHE") or os.path.expanduser("~/.cache/osprey")

SMOLLM_CHAT = None  # filled from the GGUF


def gguf_vocab(path):
    r = gguf.GGUFReader(path)
    f = r.fields

    def get(k, default=None):
        return f[k].contents() if k in f else default

    return {
        "tokens": get("tokenizer.ggml.tokens"),
        "types": get("tokenizer.ggml.token_type"),
        "scores": get("tokenizer.ggml.scores"),
        "merges": get("tokenizer.ggml.merges"),
        "chat_template": get("tokenizer.chat_template"),
        "bos": get("tokenizer.ggml.bos_token_id"),
        "eos": get("tokenizer.ggml.eos_token_id"),
        "unk": get("tokenizer.ggml.unknown_token_id"),
        "pad": get("tokenizer.ggml.padding_token_id"),
    }


def bf16_bits(x):
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    b = x.astype(np.float32).view(np.uint32)
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def save_weights(out, tensors, dtype):
    """tensors: name -> float32 array, stored as F32 / F16 / BF16. Written directly in the
    safetensors layout (8-byte header length, JSON header with sorted names, data) rather than
    with the safetensors package, so the bytes do not depend on that package's version and CI
    can check them against tests/data/convert/checkpoints.sha256."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        x = tensors[name].astype(np.float32)
        if dtype == "F32":
            data = x.astype("<f4").tobytes()
        elif dtype == "F16":
            data = x.astype("<f2").tobytes()
        else:
            data = bf16_bits(x).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(x.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as fp:
        fp.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            fp.write(b)


def decoder_weights(rng, cfg, *, qkv_bias, gemma, tied):
    """Weights at a scale that gives peaked logits (so top-k comparisons are not near-ties)."""
    E, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", E // H)
    V = cfg["vocab_size"]

    def lin(o, i):
        return (rng.standard_normal((o, i), dtype=np.float32) * (1.5 / np.sqrt(i))).astype(np.float32)

    def norm(n):
        # Gemma stores w with scale (1 + w); others store the scale itself.
        base = 0.0 if gemma else 1.0
        return (base + 0.2 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    t = {"model.embed_tokens.weight": rng.standard_normal((V, E), dtype=np.float32) * (1.0 if not gemma else 0.15)}
    for il in range(L):
        p = f"model.layers.{il}."
        t[p + "input_layernorm.weight"] = norm(E)
        t[p + "self_attn.q_proj.weight"] = lin(H * D, E)
        t[p + "self_attn.k_proj.weight"] = lin(KV * D, E)
        t[p + "self_attn.v_proj.weight"] = lin(KV * D, E)
        t[p + "self_attn.o_proj.weight"] = lin(E, H * D)
        if qkv_bias:
            for n, o in (("q", H * D), ("k", KV * D), ("v", KV * D)):
                t[p + f"self_attn.{n}_proj.bias"] = 0.3 * rng.standard_normal(o, dtype=np.float32)
        t[p + "post_attention_layernorm.weight"] = norm(E)
        if gemma:
            t[p + "self_attn.q_norm.weight"] = norm(D)
            t[p + "self_attn.k_norm.weight"] = norm(D)
            t[p + "pre_feedforward_layernorm.weight"] = norm(E)
            t[p + "post_feedforward_layernorm.weight"] = norm(E)
        t[p + "mlp.gate_proj.weight"] = lin(F, E)
        t[p + "mlp.up_proj.weight"] = lin(F, E)
        t[p + "mlp.down_proj.weight"] = lin(E, F)
    t["model.norm.weight"] = norm(E)
    if not tied:
        t["lm_head.weight"] = lin(V, E) * 3.0
    return t


def bpe_tokenizer_json(v, pre_tokenizer, post_processor, normalizer=None):
    vocab, added = {}, []
    for i, (tok, ty) in enumerate(zip(v["tokens"], v["types"])):
        if ty == 5:  # [PADn] filler: not a token of the original tokenizer
            continue
        if ty in (3, 4):
            added.append({"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": ty == 4, "special": ty == 3})
        if ty == 1 or i < 100:  # SmolLM keeps its specials in the BPE vocabulary too
            vocab[tok] = i
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [m.split(" ") for m in v["merges"]]},
    }


def write_json(out, name, obj):
    with open(os.path.join(out, name), "w", encoding="utf-8") as fp:
        json.dump(obj, fp, ensure_ascii=False, indent=1)


def make_llama(root):
    out = os.path.join(root, "llama")
    os.makedirs(out, exist_ok=True)
    v = gguf_vocab(os.path.join(CACHE, "SmolLM2-135M-Instruct.Q4_1.gguf"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
           "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 49152,
           "tie_word_embeddings": False, "bos_token_id": int(v["bos"]), "eos_token_id": int(v["eos"]),
           "pad_token_id": int(v["pad"]), "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
           "torch_dtype": "float32"}
    write_json(out, "config.json", cfg)
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    write_json(out, "tokenizer.json", bpe_tokenizer_json(v, pre, None))
    write_json(out, "tokenizer_config.json", {
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>", "chat_template": v["chat_template"],
        "model_max_length": 8192, "clean_up_tokenization_spaces": False, "add_prefix_space": False})
    save_weights(out, decoder_weights(np.random.default_rng(1), cfg, qkv_bias=False, gemma=False, tied=False), "F32")


def make_qwen2(root):
    out = os.path.join(root, "qwen2")
    os.makedirs(out, exist_ok=True)
    v = gguf_vocab(os.path.join(CACHE, "qwen2.5-coder-0.5b-instruct.gguf"))
    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
           "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 1024, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "vocab_size": 151936,
           "tie_word_embeddings": True, "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
           "use_sliding_window": False, "sliding_window": None, "max_window_layers": 2, "torch_dtype": "bfloat16"}
    write_json(out, "config.json", cfg)
    regex = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    post = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    write_json(out, "tokenizer.json", bpe_tokenizer_json(v, pre, post, normalizer={"type": "NFC"}))
    write_json(out, "tokenizer_config.json", {
        "tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "unk_token": None, "add_prefix_space": False,
        "chat_template": v["chat_template"], "model_max_length": 32768, "errors": "replace"})
    save_weights(out, decoder_weights(np.random.default_rng(2), cfg, qkv_bias=True, gemma=False, tied=True), "BF16")


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(num, wire, payload):
    key = pb_varint((num << 3) | wire)
    if wire == 2:
        return key + pb_varint(len(payload)) + payload
    return key + payload


def sentencepiece_model(tokens, scores, types):
    """A SentencePiece ModelProto: pieces (piece, score, type), a BPE trainer spec and an
    identity normalizer, as Gemma's tokenizer.model has."""
    out = bytearray()
    for tok, score, ty in zip(tokens, scores, types):
        piece = pb_field(1, 2, tok.encode("utf-8")) + pb_field(2, 5, struct.pack("<f", score))
        if ty != 1:
            piece += pb_field(3, 0, pb_varint(int(ty)))
        out += pb_field(1, 2, piece)
    trainer = pb_field(3, 0, pb_varint(2)) + pb_field(35, 0, pb_varint(1))  # model_type BPE, byte_fallback
    out += pb_field(2, 2, trainer)
    normalizer = (pb_field(1, 2, b"identity") + pb_field(3, 0, pb_varint(0)) + pb_field(4, 0, pb_varint(0)) +
                  pb_field(5, 0, pb_varint(1)))  # add_dummy_prefix, remove_extra_whitespaces off; escape spaces
    out += pb_field(3, 2, normalizer)
    return bytes(out)


def make_gemma3(root):
    out = os.path.join(root, "gemma3")
    os.makedirs(out, exist_ok=True)
    v = gguf_vocab(os.path.join(CACHE, "gemma-3-270m-q4_k_m.gguf"))
    cfg = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 64,
           "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2,
           "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 4, "sliding_window_pattern": 6,
           "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
           "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
           "rope_local_base_freq": 10000.0, "rope_scaling": None, "vocab_size": 262144,
           "tie_word_embeddings": True, "hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": None,
           "attn_logit_softcapping": None, "bos_token_id": int(v["bos"]), "eos_token_id": int(v["eos"]),
           "pad_token_id": int(v["pad"]), "unk_token_id": int(v["unk"]), "torch_dtype": "float16"}
    write_json(out, "config.json", cfg)
    # GGUF stores user-defined pieces (whitespace runs, ...) with plain spaces; the SentencePiece
    # model and tokenizer_config.json spell them with U+2581 as Gemma's own files do.
    pieces = [t.replace(" ", "\u2581") if ty == 4 else t for t, ty in zip(v["tokens"], v["types"])]
    with open(os.path.join(out, "tokenizer.model"), "wb") as fp:
        fp.write(sentencepiece_model(pieces, v["scores"], v["types"]))
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": False}
             for i, (t, ty) in enumerate(zip(pieces, v["types"])) if ty == 4}
    write_json(out, "tokenizer_config.json", {
        "tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
        "chat_template": v["chat_template"], "model_max_length": 32768})
    save_weights(out, decoder_weights(np.random.default_rng(3), cfg, qkv_bias=False, gemma=True, tied=True), "F16")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(CACHE, "hf-checkpoints")
    for make in (make_llama, make_qwen2, make_gemma3):
        make(root)
        print("wrote", os.path.join(root, make.__name__[5:]))


if __name__ == "__main__":
    main()
