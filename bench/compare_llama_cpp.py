#!/usr/bin/env python3
"""Prompt-processing and generation tokens/s of `osprey run` and llama.cpp (llama-cpp-python),
same model file, same prompt, same threads, measured in the same run; prints the ratios.

  python3 bench/compare_llama_cpp.py [--threads 2] [--gen 64] [--prompt-tokens 128] MODEL.gguf...

Greedy decoding on both sides; llama.cpp's timings come from its own perf counters
(llama_perf_context), ours from `osprey run --verbose`.
"""
import argparse, os, re, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
OSPREY = os.path.join(HERE, "..", "build", "tools", "osprey")
TEXT = ("The history of the lighthouse begins with fires lit on hilltops to guide ships home. Over centuries, "
        "keepers tended lamps of oil and later electric bulbs, rotating lenses that threw beams across dark water. ")


def run_osprey(model, prompt, threads, n_gen):
    out = subprocess.run([OSPREY, "run", model, prompt, "-n", str(n_gen), "--temp", "0", "--repeat-penalty", "1",
                          "-t", str(threads), "--verbose"], capture_output=True, text=True, check=True).stderr
    pp = re.search(r"prompt eval: (\d+) tokens, ([\d.]+) tokens/s", out)
    tg = re.search(r"generation: +(\d+) tokens, ([\d.]+) tokens/s", out)
    return int(pp.group(1)), float(pp.group(2)), int(tg.group(1)), float(tg.group(2))


def run_llama(model, prompt, threads, n_gen):
    import llama_cpp
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    toks = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    n = 0
    for tok in llm.generate(toks, temp=0.0, top_k=1, repeat_penalty=1.0):
        n += 1
        if n >= n_gen:
            break
    perf = llama_cpp.llama_perf_context(llm.ctx)
    pp = perf.n_p_eval / (perf.t_p_eval_ms / 1e3) if perf.t_p_eval_ms > 0 else 0
    tg = perf.n_eval / (perf.t_eval_ms / 1e3) if perf.t_eval_ms > 0 else 0
    return perf.n_p_eval, pp, perf.n_eval, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--prompt-repeat", type=int, default=3, help="copies of the base paragraph in the prompt")
    a = ap.parse_args()
    prompt = TEXT * a.prompt_repeat
    print(f"{'model':40} {'':6} {'osprey':>10} {'llama.cpp':>10} {'ratio':>7}")
    for m in a.models:
        o = run_osprey(m, prompt, a.threads, a.gen)
        l = run_llama(m, prompt, a.threads, a.gen)
        name = os.path.basename(m)[:40]
        print(f"{name:40} {'pp t/s':6} {o[1]:10.1f} {l[1]:10.1f} {o[1] / l[1] if l[1] else 0:7.2f}   ({o[0]} / {l[0]} prompt tokens)")
        print(f"{'':40} {'tg t/s':6} {o[3]:10.1f} {l[3]:10.1f} {o[3] / l[3] if l[3] else 0:7.2f}   ({o[2]} / {l[2]} tokens)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
