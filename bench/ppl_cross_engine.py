#!/usr/bin/env python3
"""Where a same-file perplexity difference between Osprey and llama.cpp comes from.

Scores the same chunks of one or more texts (default The Devil's Dictionary; -f kjv the King
James Bible's first five books; llama.cpp's perplexity method, see tests/scripts/llama_cpp_eval.py)
with several evaluators and compares them token by token:

  osprey        `osprey perplexity` (8-bit activations in quantized matmuls), per-token NLL
                read back from its --save-kl-base file (log-probs stored to ~0.2 millinats)
  osprey-exact  the same with --exact-matmul (f32 activations times the dequantized weights)
  llama         llama.cpp (llama-cpp-python 0.3.36) as bench/quant_quality.py runs it
                (flash attention off: query and softmax rounded to f16 in the KQ / KQV matmuls)
  llama-fa      llama.cpp with flash attention on
  llama-b32     llama.cpp with n_batch = n_ubatch = 32 (the chunk decoded in pieces)
  f64           the float64 numpy forward pass of tests/scripts/gen_numpy_ref.py on the
                file's dequantized weights (--f64; llama-architecture models, slow)

For each evaluator: PPL, and against the reference (f64 when given, else osprey-exact) and
against osprey the paired mean NLL difference with its standard error (what moves PPL: PPL
ratio = exp(mean ΔNLL)) and its RMS (the per-token noise that sets that standard error).
With llama and osprey both run, a last line says whether the two engines give the same PPL
within ±0.1% (the 95% interval of ln(PPL llama / PPL osprey) inside ±0.1%), differ, or whether
the text is too short to tell. --chunks 0 scores every whole chunk of each text.

  python3 bench/ppl_cross_engine.py -m ~/.cache/osprey/quant-quality/smollm2-135m-f32-q8_0.osprey.gguf \
      -c 256 --chunks 6 --f64
  python3 bench/ppl_cross_engine.py -m FILE.gguf -c 512 --chunks 0 -f devil -f kjv --only osprey,llama
  python3 bench/ppl_cross_engine.py -m FILE.gguf -c 512 --chunks 200 -f kjv4 --only osprey,llama \
      --prior 114750:+0.025%:0.039%
"""
import argparse, os, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "scripts"))
sys.path.insert(0, HERE)
import llama_cpp_eval as lce  # noqa: E402
from quant_quality import named_text, osprey_nll  # noqa: E402


def llama_nll(model, toks_all, ctx, chunks, threads, n_batch=None, flash=False):
    llm = lce.load(model, ctx, threads, n_batch, flash)
    nll = lce.perplexity(llm, toks_all, ctx, chunks)["nll"]
    del llm
    return nll


def f64_nll(model, toks_all, ctx, chunks, bos):
    import gen_numpy_ref
    first, nll = ctx // 2, []
    for c in range(chunks):
        ids = list(toks_all[c * ctx:(c + 1) * ctx])
        if bos is not None:
            ids[0] = bos
        lp = lce.log_softmax(np.asarray(gen_numpy_ref.forward(model, ids))[first:ctx - 1])
        target = np.array(toks_all[c * ctx + first + 1:(c + 1) * ctx])
        nll.extend(-lp[np.arange(len(target)), target])
        print(f"  f64 chunk {c + 1}/{chunks}", file=sys.stderr, flush=True)
    return np.array(nll)


def score_text(args, text, want):
    """Per-token NLL of every wanted evaluator over one text."""
    from llama_cpp import Llama
    with lce.quiet():
        tok = Llama(model_path=args.model, n_ctx=args.ctx, vocab_only=True, verbose=False)
    toks_all = lce.tokens(tok, open(text, encoding="utf-8").read())
    bos = tok.token_bos() if tok._model.add_bos_token() and tok.token_bos() >= 0 else None
    del tok
    chunks = args.chunks or len(toks_all) // args.ctx
    if chunks < 1 or chunks * args.ctx > len(toks_all):
        sys.exit(f"{text}: {len(toks_all)} tokens hold {len(toks_all) // args.ctx} chunks of {args.ctx}, not {chunks}")

    res = {}
    if want("osprey"):
        res["osprey"], otoks = osprey_nll(args.osprey, args.model, text, args.ctx, chunks, args.threads, False)
        if bos is not None:  # Osprey stores each chunk as decoded: BOS in front
            otoks = otoks.copy().reshape(chunks, args.ctx)[:, 1:].ravel()
            ltoks = np.array(toks_all[:chunks * args.ctx]).reshape(chunks, args.ctx)[:, 1:].ravel()
        else:
            ltoks = np.array(toks_all[:chunks * args.ctx])
        if not np.array_equal(otoks, ltoks):
            sys.exit("Osprey and llama.cpp tokenize the text differently")
    if want("osprey-exact"):
        res["osprey-exact"], _ = osprey_nll(args.osprey, args.model, text, args.ctx, chunks, args.threads, True)
    if want("llama"):
        res["llama"] = llama_nll(args.model, toks_all, args.ctx, chunks, args.threads)
    if want("llama-fa"):
        res["llama-fa"] = llama_nll(args.model, toks_all, args.ctx, chunks, args.threads, flash=True)
    if want("llama-b32"):
        res["llama-b32"] = llama_nll(args.model, toks_all, args.ctx, chunks, args.threads, n_batch=32)
    if args.f64:
        res["f64"] = f64_nll(args.model, toks_all, args.ctx, chunks, bos)
    return chunks, res


def verdict_of(n, mean, sd, tol=0.001):
    """The 95% interval of the mean ln(PPL llama / PPL osprey) of n per-token differences (mean,
    standard deviation sd) against +-tol, in words."""
    se = sd / np.sqrt(n)
    lo, hi = mean - 1.96 * se, mean + 1.96 * se
    word = "same within ±0.1%" if -tol < lo and hi < tol else "different" if hi < -tol or lo > tol else \
        "inconclusive (the text is too short to tell)"
    return (f"ln(PPL llama.cpp / PPL Osprey) = {100 * mean:+.3f}% ± {100 * se:.3f}% "
            f"(95% interval [{100 * lo:+.3f}%, {100 * hi:+.3f}%]): {word}")


def sample_of(d):
    """d: per-token NLL llama - osprey -> (n, mean, sd), the shape verdict_of and pooled take."""
    return len(d), d.mean(), d.std(ddof=1)


def parse_prior(spec):
    """N:MEAN%:SE% (an earlier run's scored tokens, mean and standard error of the paired
    difference, as its verdict line printed them) -> (n, mean, sd) in nats."""
    try:
        n, mean, se = spec.split(":")
        n, mean, se = int(n), float(mean.rstrip("%")) / 100, float(se.rstrip("%")) / 100
    except ValueError:
        sys.exit(f"--prior {spec!r}: want N:MEAN%:SE%, e.g. 114750:+0.025%:0.039%")
    if n < 2 or se < 0:
        sys.exit(f"--prior {spec!r}: N must be at least 2 and SE non-negative")
    return n, mean, se * np.sqrt(n)


def pooled(parts):
    """(n, mean, sd) of disjoint samples -> those of all their values together (exact: the
    within-sample sums of squares plus the spread of the sample means)."""
    n = sum(p[0] for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / n
    ss = sum((p[0] - 1) * p[2] ** 2 + p[0] * (p[1] - mean) ** 2 for p in parts)
    return n, mean, np.sqrt(ss / (n - 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--osprey", default=os.path.join(ROOT, "build", "tools", "osprey"))
    ap.add_argument("-c", "--ctx", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=6, help="chunks per text (0: all whole chunks)")
    ap.add_argument("-f", "--text", action="append", help="devil (default), kjv, kjv2..kjv5 or a path; repeatable")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--f64", action="store_true", help="also the float64 numpy forward pass (reference)")
    ap.add_argument("--only", help="comma-separated evaluators to run (default: all)")
    ap.add_argument("--save", help="write the per-token NLL of each evaluator and text to this .npz")
    ap.add_argument("--merge", action="append", default=[],
                    help="pool with the tokens of an earlier --save of the same file (other chunks!)")
    ap.add_argument("--prior", action="append", default=[], metavar="N:MEAN%:SE%",
                    help="pool the verdict with an earlier run's summary (its scored tokens, mean and s.e. "
                         "of ln(PPL llama.cpp / PPL Osprey)) where its --save file is gone; other chunks!")
    args = ap.parse_args()
    want = lambda k: not args.only or k in args.only.split(",")
    if args.prior and not (want("osprey") and want("llama")):
        sys.exit("--prior pools the osprey/llama verdict: --only must include osprey and llama")
    priors = [parse_prior(p) for p in args.prior]  # bad specs fail before any scoring

    res, parts = {}, []
    for path in args.merge:  # earlier runs' tokens first (evaluators both runs have)
        with np.load(path) as z:
            for key in z.files:
                res.setdefault(key.rsplit("_", 1)[0], []).append(z[key])
        parts.append(f"{os.path.basename(path)}")
    for name in args.text or ([] if args.merge else ["devil"]):  # --merge alone: only the saved tokens
        chunks, r = score_text(args, named_text(name), want)
        parts.append(f"{os.path.basename(name)} {chunks} chunks")
        for k, v in r.items():
            res.setdefault(k, []).append(v)
    if args.save:
        np.savez(args.save, **{f"{k}_{i}": v for k, vs in res.items() for i, v in enumerate(vs)})
    res = {k: np.concatenate(v) for k, v in res.items() if want(k)}
    if len({len(v) for v in res.values()}) > 1:
        sys.exit("the merged runs do not hold the same evaluators")
    ref = "f64" if "f64" in res else "osprey-exact" if "osprey-exact" in res else next(iter(res))

    n = len(next(iter(res.values())))
    print(f"{os.path.basename(args.model)}: {', '.join(parts)} of {args.ctx}, {n} scored tokens; reference {ref}")
    print("| evaluator | PPL | mean ΔNLL vs ref ± s.e. | RMS ΔNLL vs ref | mean ΔNLL vs osprey ± s.e. | "
          "RMS ΔNLL vs osprey |")
    print("|---|---|---|---|---|---|")
    paired = lambda d: f"{d.mean():+.5f} ± {d.std(ddof=1) / np.sqrt(n):.5f} | {np.sqrt((d * d).mean()):.5f}"
    for k, v in res.items():
        vs_osprey = paired(v - res["osprey"]) if "osprey" in res and k != "osprey" else "- | -"
        vs_ref = paired(v - res[ref]) if k != ref else "- | -"
        print(f"| {k} | {np.exp(v.mean()):.4f} | {vs_ref} | {vs_osprey} |")
    print("(ΔNLL in nats per token: PPL ratio = exp(mean ΔNLL); s.e. of the paired mean)")
    if "osprey" in res and "llama" in res:
        sample = sample_of(res["llama"] - res["osprey"])
        print(verdict_of(*sample))
        if priors:
            everything = pooled(priors + [sample])
            print(f"pooled with {len(priors)} earlier run(s), {everything[0]} scored tokens: " + verdict_of(*everything))
    return 0


if __name__ == "__main__":
    sys.exit(main())
