#!/usr/bin/env python3
"""References for tests/test_convert.cpp, for the checkpoints of make_hf_checkpoints.py and the
real all-MiniLM-L6-v2:

  digest        (torch venv)  llama.cpp's convert_hf_to_gguf.py on each checkpoint, digested by
                              gguf_digest.py -> tests/data/convert/<name>.llama_cpp.json
  transformers  (torch venv)  top-10 logits at every position of a few prompts, float32
                              -> tests/data/convert/<name>.transformers.json
  llama_cpp     (python3 with llama_cpp)  `osprey convert` each checkpoint, run llama.cpp on
                              Osprey's file and compare with the transformers logits
                              -> tests/data/convert/<name>.llama_cpp_logits.json (and a report)

Usage:
  ~/.cache/osprey/refvenv/bin/python tests/scripts/gen_convert_ref.py digest transformers
  python3 tests/scripts/gen_convert_ref.py llama_cpp --osprey build-convert/tools/osprey
Needs: torch, transformers, tokenizers, sentencepiece, gguf (digest, transformers); llama-cpp-python
0.3.36 (llama_cpp). LLAMA_CPP_DIR: llama.cpp sources with convert_hf_to_gguf.py
(default: the ones vendored in llama-cpp-python 0.3.36, /tmp/lcp/...).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "convert")
CACHE = os.environ.get("OSPREY_CACHE") or os.path.expanduser("~/.cache/osprey")
LLAMA_CPP_DIR = os.environ.get("LLAMA_CPP_DIR", "/tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp")

DECODERS = ["llama", "qwen2", "gemma3"]
PROMPTS = [
    "The quick brown fox jumps over the lazy dog 1234.",
    "def add(a, b):\n    return a + b  # sum",
    "Ünïcödé — 東京 🚀 and  two  spaces",
]


def checkpoint(name):
    return os.path.join(CACHE, "all-minilm-l6-v2") if name == "minilm" else os.path.join(CACHE, "hf-checkpoints", name)


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as fp:
        json.dump(obj, fp, ensure_ascii=False, indent=None, separators=(",", ":"))
        fp.write("\n")


def digest_refs():
    sys.path.insert(0, HERE)
    from gguf_digest import digest
    jobs = [(n, "f32", f"{n}.llama_cpp.json") for n in DECODERS + ["minilm"]] + [("minilm", "f16", "minilm-f16.llama_cpp.json")]
    for name, outtype, ref in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.gguf")
            subprocess.run([sys.executable, os.path.join(LLAMA_CPP_DIR, "convert_hf_to_gguf.py"), checkpoint(name),
                            "--outtype", outtype, "--outfile", out], check=True, capture_output=True)
            d = digest(out)
        # Model-card metadata (general.name, datasets, licence, ...) is not the converter's business.
        keep = {"general.architecture", "general.file_type", "general.quantization_version", "general.type"}
        d["metadata"] = {k: v for k, v in d["metadata"].items() if not k.startswith("general.") or k in keep}
        write(ref, d)
        print("wrote", ref)


def prompt_tokens(name):
    ckpt = checkpoint(name)
    if name == "gemma3":
        # llama.cpp's tokenization with the real Gemma 3 GGUF (the checkpoint's vocabulary came
        # from it); llama_cpp lives in the system python3, not in the torch venv.
        code = ("import json, sys, llama_cpp; m = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False);"
                "print(json.dumps([m.tokenize(p.encode(), add_bos=True, special=True) for p in json.loads(sys.argv[2])]))")
        r = subprocess.run(["python3", "-c", code, os.path.join(CACHE, "gemma-3-270m-q4_k_m.gguf"), json.dumps(PROMPTS)],
                           check=True, capture_output=True, text=True)
        return json.loads(r.stdout)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(ckpt, "tokenizer.json"))
    return [tok.encode(p).ids for p in PROMPTS]


def top_logits(rows, k=10):
    out = []
    for row in rows:
        idx = sorted(range(len(row)), key=lambda i: -row[i])[:k]
        out.append([[int(i), float(row[i])] for i in idx])
    return out


def transformers_refs():
    import torch
    from transformers import AutoModelForCausalLM
    import transformers
    torch.manual_seed(0)
    for name in DECODERS:
        model = AutoModelForCausalLM.from_pretrained(checkpoint(name), dtype=torch.float32, attn_implementation="eager")
        model.eval()
        cases = []
        for prompt, ids in zip(PROMPTS, prompt_tokens(name)):
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0].float()
            top = torch.topk(logits, 10, dim=-1)
            cases.append({"prompt": prompt, "tokens": ids,
                          "top_logits": [[[int(i), float(v)] for i, v in zip(ti.tolist(), tv.tolist())]
                                         for ti, tv in zip(top.indices, top.values)]})
        write(f"{name}.transformers.json", {"checkpoint": name, "reference": f"transformers {transformers.__version__}",
                                            "cases": cases})
        print("wrote", f"{name}.transformers.json")


def llama_cpp_refs(osprey):
    import numpy as np
    import llama_cpp
    for name in DECODERS:
        ref = json.load(open(os.path.join(OUT, f"{name}.transformers.json")))
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, f"{name}.gguf")
            subprocess.run([osprey, "convert", checkpoint(name), "-o", out, "--outtype", "f32", "-q"], check=True)
            llm = llama_cpp.Llama(model_path=out, n_ctx=256, n_threads=2, logits_all=True, verbose=False)
            cases, worst, top1_bad = [], 0.0, 0
            for c in ref["cases"]:
                toks = llm.tokenize(c["prompt"].encode(), add_bos=True, special=True)
                if toks != c["tokens"]:
                    print(f"{name}: llama.cpp tokenizes {c['prompt']!r} as {toks}, transformers side {c['tokens']}")
                llm.reset()
                llm.eval(c["tokens"])
                rows = np.array(llm.scores[: len(c["tokens"])])
                for p, top in enumerate(c["top_logits"]):
                    for i, v in top:
                        worst = max(worst, abs(float(rows[p][i]) - v))
                    top1_bad += int(np.argmax(rows[p]) != top[0][0])
                cases.append({"prompt": c["prompt"], "tokens": c["tokens"], "llama_cpp_tokens": toks,
                              "top_logits": top_logits(rows.tolist())})
            del llm
        print(f"{name}: llama.cpp on Osprey's conversion vs transformers: max |logit diff| {worst:.5f}, "
              f"top-1 mismatches {top1_bad}")
        write(f"{name}.llama_cpp_logits.json", {"checkpoint": name, "reference": "llama-cpp-python " + llama_cpp.__version__,
                                                "max_diff_vs_transformers": worst, "cases": cases})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="+", choices=["digest", "transformers", "llama_cpp"])
    ap.add_argument("--osprey", default="build/tools/osprey")
    a = ap.parse_args()
    if "digest" in a.what:
        digest_refs()
    if "transformers" in a.what:
        transformers_refs()
    if "llama_cpp" in a.what:
        llama_cpp_refs(a.osprey)


if __name__ == "__main__":
    main()
