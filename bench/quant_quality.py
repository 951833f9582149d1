#!/usr/bin/env python3
"""Quantization quality, cross-validated with llama.cpp.

From one high-precision source GGUF, each type is quantized by Osprey (`osprey quantize`) and by
llama.cpp (`llama_cpp.llama_model_quantize`, i.e. llama-quantize, from llama-cpp-python
0.3.36's sources). Over The Devil's Dictionary (public domain; Debian's dict-devil,
/usr/share/dictd/devil.dict.dz), with llama.cpp's perplexity method and chunking:

  * Osprey scores the source once and saves its log-probabilities (--save-kl-base);
  * Osprey scores both quantized files against them: PPL and mean KL divergence;
  * llama.cpp scores Osprey's file (tests/scripts/llama_cpp_eval.py, same tokens and chunks).

Prints the Markdown table (type, file size, quantize time, PPL, KL for both quantizers) and
two checks per type: the same Osprey file gives the same PPL in both engines (within 0.1%), and
Osprey's PPL is no worse than llama.cpp's file of the same type (within 0.5%).

  python3 bench/quant_quality.py --src ~/.cache/osprey/quant/smollm2-135m-f32.gguf \
      --types Q4_0,Q8_0,Q4_K_M -c 512 --chunks 8 -t 2
Exit status 1 when a check fails.
"""
import argparse, gzip, json, os, re, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "scripts"))
import llama_cpp_eval as lce  # noqa: E402

CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
TEXT_DZ = "/usr/share/dictd/devil.dict.dz"
TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
         "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"]


def text_file():
    out = os.path.join(CACHE, "text", "devils_dictionary.txt")
    if not os.path.exists(out):
        if not os.path.exists(TEXT_DZ):
            sys.exit(f"{TEXT_DZ} is missing: apt-get install dict-devil (tools/setup.sh does)")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with gzip.open(TEXT_DZ, "rb") as f, open(out + ".tmp", "wb") as g:  # dictzip is gzip
            g.write(f.read())
        os.replace(out + ".tmp", out)
    return out


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def osprey_quantize(osprey, src, dst, qtype, threads, reuse):
    if reuse and os.path.exists(dst):
        return None
    t0 = time.perf_counter()
    run([osprey, "quantize", "-q", "-t", str(threads), src, dst, qtype])
    return time.perf_counter() - t0


def llama_quantize(src, dst, qtype, threads, reuse):
    import ctypes
    import llama_cpp
    if reuse and os.path.exists(dst):
        return None
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = threads
    p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + qtype)
    t0 = time.perf_counter()
    with lce.quiet():
        rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize {qtype} failed ({rc})")
    return time.perf_counter() - t0


def osprey_kl(osprey, model, base, args):
    return parse_kl(run([osprey, "perplexity", "-m", model, "--kl-base", base, "-t", str(args.threads),
                         "--chunks", str(args.chunks)]))


def parse_kl(out):
    """The summary of `osprey perplexity --kl-base` as numbers."""
    num = r"([-0-9.e+]+)"
    ppl = re.search(r"^PPL +: " + num + " ± " + num, out, re.M)
    kl = re.search(r"^Mean KL +: " + num + " ± " + num, out, re.M)
    top = re.search(r"^Same top token : " + num, out, re.M)
    ppl_base = re.search(r"^PPL base +: " + num, out, re.M)
    return {"ppl": float(ppl.group(1)), "ppl_err": float(ppl.group(2)), "kl": float(kl.group(1)),
            "kl_err": float(kl.group(2)), "top1": float(top.group(1)), "ppl_base": float(ppl_base.group(1))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=os.path.join(CACHE, "quant", "smollm2-135m-f32.gguf"))
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--out-dir", default=os.path.join(CACHE, "quant-quality"))
    ap.add_argument("--osprey", default=os.path.join(ROOT, "build", "tools", "osprey"))
    ap.add_argument("-c", "--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="keep quantized files from an earlier run (no times)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    text = text_file()
    stem = os.path.splitext(os.path.basename(args.src))[0]

    base = os.path.join(args.out_dir, f"{stem}.c{args.ctx}.n{args.chunks}.klbase")
    if not (args.reuse and os.path.exists(base)):
        run([args.osprey, "perplexity", "-m", args.src, "-f", text, "-c", str(args.ctx), "--chunks",
             str(args.chunks), "-t", str(args.threads), "--kl-base", base, "--save-kl-base"])
    src_ppl = osprey_kl(args.osprey, args.src, base, args)
    print(f"source {os.path.basename(args.src)}: PPL {src_ppl['ppl']:.4f} ± {src_ppl['ppl_err']:.4f} "
          f"({args.chunks} chunks of {args.ctx}, {text})", flush=True)

    rows, failures = [], []
    for qtype in args.types.split(","):
        ours = os.path.join(args.out_dir, f"{stem}-{qtype.lower()}.osprey.gguf")
        theirs = os.path.join(args.out_dir, f"{stem}-{qtype.lower()}.llama.gguf")
        t_ours = osprey_quantize(args.osprey, args.src, ours, qtype, args.threads, args.reuse)
        t_theirs = llama_quantize(args.src, theirs, qtype, args.threads, args.reuse)
        o = osprey_kl(args.osprey, ours, base, args)
        l = osprey_kl(args.osprey, theirs, base, args)
        llm = lce.load(ours, args.ctx, args.threads)
        x = lce.perplexity(llm, lce.tokens(llm, open(text, encoding="utf-8").read()), args.ctx, args.chunks)
        del llm
        row = {"type": qtype, "osprey": o, "llama": l, "osprey_file_in_llama_cpp_ppl": x["ppl"],
               "size_osprey": os.path.getsize(ours), "size_llama": os.path.getsize(theirs),
               "time_osprey": t_ours, "time_llama": t_theirs}
        rows.append(row)
        same = abs(x["ppl"] / o["ppl"] - 1)
        worse = o["ppl"] / l["ppl"] - 1
        row["cross_engine_diff"] = same
        row["vs_llama_quantize"] = worse
        if same > 0.001:
            failures.append(f"{qtype}: Osprey's file scores {o['ppl']:.4f} in Osprey, {x['ppl']:.4f} in llama.cpp")
        if worse > 0.005:
            failures.append(f"{qtype}: Osprey's PPL {o['ppl']:.4f} is {100 * worse:.2f}% above llama-quantize's {l['ppl']:.4f}")
        print(f"{qtype}: osprey {o['ppl']:.4f} KL {o['kl']:.5f} (llama.cpp on it {x['ppl']:.4f}), "
              f"llama-quantize {l['ppl']:.4f} KL {l['kl']:.5f}; sizes {row['size_osprey']} / {row['size_llama']}; "
              f"times {t_ours} / {t_theirs}", flush=True)

    fmt_t = lambda t: "-" if t is None else f"{t:.1f}"
    print(f"\n{args.chunks} chunks of {args.ctx} tokens; KL vs {os.path.basename(args.src)} "
          f"(PPL {src_ppl['ppl']:.4f}); sizes in MiB; times in s ({args.threads} threads)\n")
    print("| type | size Osprey | size llama.cpp | quantize s Osprey | quantize s llama.cpp | PPL Osprey file | "
          "same file in llama.cpp | PPL llama.cpp file | KL Osprey | KL llama.cpp | top-1 % Osprey |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, l = r["osprey"], r["llama"]
        print(f"| {r['type']} | {r['size_osprey'] / 2**20:.1f} | {r['size_llama'] / 2**20:.1f} | "
              f"{fmt_t(r['time_osprey'])} | {fmt_t(r['time_llama'])} | {o['ppl']:.4f} ± {o['ppl_err']:.4f} | "
              f"{r['osprey_file_in_llama_cpp_ppl']:.4f} ({100 * r['cross_engine_diff']:.3f}%) | "
              f"{l['ppl']:.4f} | {o['kl']:.5f} | {l['kl']:.5f} | {o['top1']:.2f} |")
    print()
    for f in failures:
        print("CHECK FAILED:", f)
    if not failures:
        print("all checks passed: same file same PPL in both engines (±0.1%); Osprey ≤ llama-quantize + 0.5%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"source": args.src, "source_ppl": src_ppl, "ctx": args.ctx, "chunks": args.chunks, "rows": rows}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
