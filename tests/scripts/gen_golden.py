#!/usr/bin/env python3
"""Golden outputs from llama.cpp (llama-cpp-python) for the model tests.

For each model and prompt: the prompt token ids as llama.cpp tokenizes them, a 32-token
greedy continuation (argmax of llama.cpp's logits, with the top-2 margin at each step), and
the top-10 (id, logit) pairs at every position of prompt + continuation (every 8th position
and the last 16 for the long prompt). Run: python3 tests/scripts/gen_golden.py
Needs: pip install llama-cpp-python==0.3.36 numpy; models from tools/fetch_models.py.
"""
import json, os, sys
import numpy as np
from llama_cpp import Llama, __version__ as llama_cpp_version

CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "golden")

LONG = ("The history of the lighthouse begins with fires lit on hilltops to guide ships home. "
        "Over centuries, keepers tended lamps of oil and later electric bulbs, rotating lenses that "
        "threw beams across dark water. ") * 14 + "In summary, the lighthouse"

PROMPTS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": [
        "The capital of France is",
        "def fibonacci(n):\n",
        "<|im_start|>user\nWhat is the tallest mountain on Earth?<|im_end|>\n<|im_start|>assistant\n",
        "1, 2, 3, 4, 5,",
        LONG,
    ],
    "qwen2.5-coder-0.5b-instruct.gguf": [
        "The capital of France is",
        "def quicksort(arr):\n",
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWrite hello world in C.<|im_end|>\n<|im_start|>assistant\n",
        "Once upon a time, in a small village,",
        LONG,
    ],
    "gemma-3-270m-q4_k_m.gguf": [
        "The capital of France is",
        "<start_of_turn>user\nName three colors.<end_of_turn>\n<start_of_turn>model\n",
        "import numpy as np\n\ndef",
        "Once upon a time, in a small village,",
        LONG,
    ],
}
N_GEN = 32
TOPK = 10


def topk(row, k=TOPK):
    idx = np.argsort(-row, kind="stable")[:k]
    return [[int(i), float(row[i])] for i in idx]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, prompts in PROMPTS.items():
        path = os.path.join(CACHE, name)
        llm = Llama(model_path=path, n_ctx=2048, n_batch=512, logits_all=True, n_threads=2, seed=0, verbose=False)
        cases = []
        for prompt in prompts:
            ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
            llm.reset()
            llm.eval(ids)
            gen, margins = [], []
            for _ in range(N_GEN):
                row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
                order = np.argsort(-row, kind="stable")
                tok = int(order[0])
                margins.append(float(row[order[0]] - row[order[1]]))
                gen.append(tok)
                if tok == llm.token_eos():
                    break
                llm.eval([tok])
            full = ids + gen
            # logits at every evaluated position (the last generated token was not evaluated)
            n_eval = llm.n_tokens
            positions = list(range(n_eval))
            if len(ids) > 200:
                positions = sorted(set(range(0, n_eval, 8)) | set(range(max(0, n_eval - 16), n_eval)))
            top = {str(p): topk(np.array(llm.scores[p], dtype=np.float64)) for p in positions}
            cases.append({"prompt": prompt, "tokens": ids, "greedy": gen, "greedy_margins": margins,
                          "n_eval": n_eval, "top_logits": top})
            print(name, len(ids), "prompt tokens ->", repr(llm.detokenize(gen).decode(errors="replace"))[:80], file=sys.stderr)
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump({"model": name, "reference": f"llama-cpp-python {llama_cpp_version}", "n_threads": 2,
                       "cases": cases}, f, separators=(",", ":"))
        del llm


if __name__ == "__main__":
    main()
