#!/usr/bin/env python3
"""Quality cost of KV-cache quantization: for each model, Osprey scores The Devil's Dictionary
(Debian's dict-devil; see quant_quality.py) with the default f16 cache and saves the
log-probabilities, then scores it again with each K/V cache type and reports PPL, the mean KL
divergence from the f16-cache run, and how often the top token agrees.

  python3 bench/kv_cache_quality.py -c 512 --chunks 8 -t 2 ~/.cache/osprey/*.gguf
"""
import argparse, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import quant_quality as qq  # noqa: E402

CACHE_TYPES = [("bf16", "bf16"), ("q8_0", "q8_0"), ("q4_0", "q4_0"), ("q8_0", "q4_0")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--osprey", default=os.path.join(qq.ROOT, "build", "tools", "osprey"))
    ap.add_argument("--out-dir", default=os.path.join(qq.CACHE, "kv-quality"))
    ap.add_argument("-c", "--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("-t", "--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    text = qq.text_file()
    print(f"{args.chunks} chunks of {args.ctx} tokens of {os.path.basename(text)}; KL vs the f16 cache\n")
    print("| model | K cache | V cache | PPL | KL vs f16 | same top % |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        name = os.path.basename(model)
        base = os.path.join(args.out_dir, f"{os.path.splitext(name)[0]}.c{args.ctx}.n{args.chunks}.klbase")
        qq.run([args.osprey, "perplexity", "-m", model, "-f", text, "-c", str(args.ctx), "--chunks", str(args.chunks),
                "-t", str(args.threads), "--kl-base", base, "--save-kl-base"])
        for i, (k, v) in enumerate(CACHE_TYPES):
            out = qq.run([args.osprey, "perplexity", "-m", model, "--kl-base", base, "-t", str(args.threads),
                          "--chunks", str(args.chunks), "-k", k, "-V", v])
            r = qq.parse_kl(out)
            if i == 0:
                print(f"| {name} | f16 | f16 | {r['ppl_base']:.4f} | 0 (base) | 100 |")
            print(f"| {name} | {k} | {v} | {r['ppl']:.4f} ± {r['ppl_err']:.4f} | {r['kl']:.6f} ± {r['kl_err']:.6f} | "
                  f"{r['top1']:.2f} |", flush=True)
        os.remove(base)


if __name__ == "__main__":
    main()
