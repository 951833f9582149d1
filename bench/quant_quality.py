#!/usr/bin/env python3
"""Quantization quality, cross-validated with llama.cpp.

From one high-precision source GGUF, each type is quantized by Osprey (`osprey quantize`) and by
llama.cpp (`llama_cpp.llama_model_quantize`, i.e. llama-quantize, from llama-cpp-python
0.3.36's sources). Over The Devil's Dictionary (public domain; Debian's dict-devil,
/usr/share/dictd/devil.dict.dz), with llama.cpp's perplexity method and chunking:

  * Osprey scores the source once and saves its log-probabilities (--save-kl-base);
  * Osprey scores both quantized files against them: PPL and mean KL divergence;
  * llama.cpp scores Osprey's file (tests/scripts/llama_cpp_eval.py, same tokens and chunks).

With --imatrix, both quantizers get the same importance matrix: `osprey imatrix` over the
second half of the text (a part no scored chunk reaches; checked), handed to llama.cpp through
llama_model_quantize_params.imatrix exactly as llama-quantize loads the file (sum / count).
--make-source MODEL.gguf writes the F32 source by exact dequantization of a released file
(`osprey quantize --allow-requantize MODEL F32`), as smollm2-135m-f32.gguf was made.

Prints the Markdown table (type, file size, quantize time, PPL, KL for both quantizers) and
two checks per type: the same Osprey file gives the same PPL in both engines (within 0.1%), and
Osprey's PPL is no worse than llama.cpp's file of the same type (within 0.5%).

  python3 bench/quant_quality.py --src ~/.cache/osprey/quant/smollm2-135m-f32.gguf \
      --types Q4_0,Q8_0,Q4_K_M -c 512 --chunks 40 -t 2 [--imatrix]
  python3 bench/quant_quality.py --make-source ~/.cache/osprey/qwen2.5-coder-0.5b-instruct.gguf \
      --types Q4_K_M -c 512 --chunks 40
Exit status 1 when a check fails.
"""
import argparse, gzip, json, os, re, resource, struct, subprocess, sys, tempfile, time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "scripts"))
import llama_cpp_eval as lce  # noqa: E402

KL_STEP = 24.0 / 65534.0  # engine/eval/perplexity.h kKlStep
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


KJV_BOOKS = {"kjv": ("kjv_pentateuch.txt", "Genesis 1:1-Deuteronomy 34:12"),  # ~200k tokens
             # Its last three books alone (~110k tokens): disjoint from the first ~90k tokens of
             # "kjv", so chunks of both can be pooled as long as "kjv" is scored no further.
             "kjv2": ("kjv_leviticus_deuteronomy.txt", "Leviticus 1:1-Deuteronomy 34:12"),
             # The next six books (~190k tokens), disjoint from both.
             "kjv3": ("kjv_joshua_kings.txt", "Joshua 1:1-2Ki25:30"),
             # 1 Chronicles to the Song of Solomon, and the New Testament: disjoint from all
             # the above and from each other, for same-file checks that need more tokens.
             "kjv4": ("kjv_chronicles_song.txt", "1Ch1:1-Song8:14"),
             "kjv5": ("kjv_new_testament.txt", "Mat1:1-Rev22:21")}


def kjv_text(name="kjv"):
    """A second public-domain text: the King James Bible's first five books, from Debian's bible-kjv
    (`bible` prints a chapter's title, then a verse a line after its number; the numbers are
    dropped)."""
    fname, books = KJV_BOOKS[name]
    out = os.path.join(CACHE, "text", fname)
    if not os.path.exists(out):
        try:
            r = subprocess.run(["bible", "-l999999", books], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"`bible` failed ({e}): apt-get install bible-kjv")
        lines = [re.sub(r"^\s*\d+ ", "", l) for l in r.stdout.splitlines() if l.strip()]
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(out + ".tmp", out)
    return out


def named_text(name):
    """A text by name (devil, or a key of KJV_BOOKS) or a path."""
    if name in KJV_BOOKS:
        return kjv_text(name)
    return text_file() if name == "devil" else name


def text_halves(text):
    """The text cut in two at a line break near the middle: (first half, second half) files."""
    out = [os.path.splitext(text)[0] + s for s in (".head.txt", ".tail.txt")]
    if not all(os.path.exists(o) for o in out):
        data = open(text, encoding="utf-8").read()
        cut = data.index("\n", len(data) // 2) + 1
        for o, part in zip(out, (data[:cut], data[cut:])):
            with open(o + ".tmp", "w", encoding="utf-8") as f:
                f.write(part)
            os.replace(o + ".tmp", o)
    return out


def make_source(osprey, model, out_dir):
    """F32 GGUF of a released model: every tensor dequantized exactly."""
    out = os.path.join(out_dir, os.path.splitext(os.path.basename(model))[0].lower() + "-f32.gguf")
    if not os.path.exists(out):
        run([osprey, "quantize", "-q", "--allow-requantize", model, out, "F32"])
    return out


def imatrix_for_llama(path):
    """An Osprey/llama.cpp GGUF imatrix file as llama_model_quantize_params.imatrix wants it
    (llama-quantize's load_imatrix: in_sum2 / counts per expert, 1 where the count is 0)."""
    import ctypes
    import gguf
    import llama_cpp
    r = gguf.GGUFReader(path)
    t = {x.name: np.array(x.data, dtype=np.float32).ravel() for x in r.tensors}
    entries, keep = [], []
    for name in sorted(k[:-len(".in_sum2")] for k in t if k.endswith(".in_sum2")):
        sums, counts = t[name + ".in_sum2"], t[name + ".counts"]
        per = sums.reshape(len(counts), -1)
        v = np.where(counts[:, None] > 0, per / np.maximum(counts[:, None], 1), 1).astype(np.float32).ravel()
        keep.append(v)
        entries.append((name.encode(), v.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), v.size))
    arr = (llama_cpp.llama_model_imatrix_data * (len(entries) + 1))()
    for i, (n, d, sz) in enumerate(entries):
        arr[i].name, arr[i].data, arr[i].size = n, d, sz
    arr[len(entries)].name = None
    return arr, keep  # keep: the arrays the pointers point into


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def osprey_quantize(osprey, src, dst, qtype, threads, reuse, imatrix=None):
    """(wall s, CPU s) of the quantization, or None when an earlier file is reused. The CPU
    time (user, all threads) is the fairer comparison on a loaded machine."""
    if reuse and os.path.exists(dst):
        return None
    c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime, time.perf_counter()
    run([osprey, "quantize", "-q", "-t", str(threads)] + (["--imatrix", imatrix] if imatrix else []) + [src, dst, qtype])
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - c0


def llama_quantize(src, dst, qtype, threads, reuse, imatrix=None):
    import ctypes
    import llama_cpp
    if reuse and os.path.exists(dst):
        return None
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = threads
    p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + qtype)
    if imatrix:
        im, _keep = imatrix_for_llama(imatrix)
        p.imatrix = ctypes.cast(im, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    c0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
    with lce.quiet():
        rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize {qtype} failed ({rc})")
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0


def osprey_nll(osprey, model, text, ctx, chunks, threads, exact):
    """Per-token NLL and the chunk tokens, from an Osprey --save-kl-base file."""
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "lp.klbase")
        cmd = [osprey, "perplexity", "-m", model, "-f", text, "-c", str(ctx), "--chunks", str(chunks), "-t",
               str(threads), "--kl-base", base, "--save-kl-base"] + (["--exact-matmul"] if exact else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
        return klbase_nll(base)


def klbase_nll(path):
    """Per-token NLL and the chunk tokens stored in an Osprey --save-kl-base file."""
    with open(path, "rb") as f:
        assert f.read(8) == b"OSPKLB01"
        n_ctx, n_vocab, n_chunks = struct.unpack("<3i", f.read(12))
        toks = np.frombuffer(f.read(4 * n_ctx * n_chunks), dtype=np.int32)
        first, nll = n_ctx // 2, []
        row = np.dtype([("mx", "<f4"), ("code", "<u2", (n_vocab,))])
        for c in range(n_chunks):
            rows = np.frombuffer(f.read(row.itemsize * (n_ctx - 1 - first)), dtype=row)
            target = toks[c * n_ctx + first + 1:(c + 1) * n_ctx]
            code = rows["code"][np.arange(len(target)), target].astype(np.float64)
            nll.extend(-(rows["mx"].astype(np.float64) - code * KL_STEP))
    return np.array(nll), toks


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
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="keep quantized files from an earlier run (no times)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--no-cross", action="store_true", help="skip scoring Osprey's files in llama.cpp (saves 2 runs a type)")
    ap.add_argument("--imatrix", action="store_true", help="both quantizers use an Osprey imatrix of the text's second half")
    ap.add_argument("--imatrix-chunks", type=int, default=40)
    ap.add_argument("--make-source", metavar="MODEL", help="use (and make) the F32 dequantization of MODEL as --src")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    text = text_file()
    if args.make_source:
        args.src = make_source(args.osprey, args.make_source, os.path.join(CACHE, "quant"))
    stem = os.path.splitext(os.path.basename(args.src))[0]
    imatrix = None
    if args.imatrix:
        head, tail = text_halves(text)
        with lce.quiet():
            from llama_cpp import Llama
            tok = Llama(model_path=args.src, vocab_only=True, verbose=False)
        if args.ctx * args.chunks > len(lce.tokens(tok, open(head, encoding="utf-8").read())):
            sys.exit("the scored chunks reach the imatrix half of the text: fewer --chunks")
        del tok
        imatrix = os.path.join(args.out_dir, f"{stem}.tail.c{args.ctx}.n{args.imatrix_chunks}.imatrix.gguf")
        if not os.path.exists(imatrix):
            run([args.osprey, "imatrix", "-m", args.src, "-f", tail, "-c", str(args.ctx), "--chunks",
                 str(args.imatrix_chunks), "-t", str(args.threads), "-o", imatrix])
    qstem = stem + ("-imat" if imatrix else "")

    base = os.path.join(args.out_dir, f"{stem}.c{args.ctx}.n{args.chunks}.klbase")
    if not (args.reuse and os.path.exists(base)):
        run([args.osprey, "perplexity", "-m", args.src, "-f", text, "-c", str(args.ctx), "--chunks",
             str(args.chunks), "-t", str(args.threads), "--kl-base", base, "--save-kl-base"])
    # The source scored against its own log-probabilities (PPL only; a whole forward pass of the
    # unquantized model): kept beside the base file for --reuse.
    src_json = base + ".source.json"
    if args.reuse and os.path.exists(src_json):
        src_ppl = json.load(open(src_json))
    else:
        src_ppl = osprey_kl(args.osprey, args.src, base, args)
        with open(src_json + ".tmp", "w") as f:
            json.dump(src_ppl, f)
        os.replace(src_json + ".tmp", src_json)
    print(f"source {os.path.basename(args.src)}: PPL {src_ppl['ppl']:.4f} ± {src_ppl['ppl_err']:.4f} "
          f"({args.chunks} chunks of {args.ctx}, {text})", flush=True)

    rows, failures, inconclusive = [], [], []
    for qtype in args.types.split(","):
        ours = os.path.join(args.out_dir, f"{qstem}-{qtype.lower()}.osprey.gguf")
        theirs = os.path.join(args.out_dir, f"{qstem}-{qtype.lower()}.llama.gguf")
        t_ours = osprey_quantize(args.osprey, args.src, ours, qtype, args.threads, args.reuse, imatrix)
        t_theirs = llama_quantize(args.src, theirs, qtype, args.threads, args.reuse, imatrix)
        o = osprey_kl(args.osprey, ours, base, args)
        l = osprey_kl(args.osprey, theirs, base, args)
        row = {"type": qtype, "osprey": o, "llama": l, "size_osprey": os.path.getsize(ours),
               "size_llama": os.path.getsize(theirs), "time_osprey": t_ours, "time_llama": t_theirs}
        rows.append(row)
        worse = row["vs_llama_quantize"] = o["ppl"] / l["ppl"] - 1
        if worse > 0.005:
            failures.append(f"{qtype}: Osprey's PPL {o['ppl']:.4f} is {100 * worse:.2f}% above llama-quantize's {l['ppl']:.4f}")
        print(f"{qtype}: osprey {o['ppl']:.4f} KL {o['kl']:.5f}, llama-quantize {l['ppl']:.4f} KL {l['kl']:.5f}; "
              f"sizes {row['size_osprey']} / {row['size_llama']}; times {t_ours} / {t_theirs}", flush=True)
        if args.no_cross:
            continue
        llm = lce.load(ours, args.ctx, args.threads)
        x = lce.perplexity(llm, lce.tokens(llm, open(text, encoding="utf-8").read()), args.ctx, args.chunks)
        del llm
        # Paired per-token comparison: 8-bit activation rounding makes each engine's NLL differ
        # token by token (RMS ~0.1 nats on SmolLM2), so the PPL ratio has a standard error of
        # ~0.1 / sqrt(tokens); the check needs the 95% interval, not the point value.
        on, _ = osprey_nll(args.osprey, ours, text, args.ctx, args.chunks, args.threads, False)
        d = np.asarray(x["nll"]) - on
        se = d.std(ddof=1) / np.sqrt(len(d))
        row.update({"osprey_file_in_llama_cpp_ppl": x["ppl"], "cross_engine_ln_ratio": float(d.mean()),
                    "cross_engine_ln_ratio_se": float(se)})
        print(f"  {qtype}: Osprey's file in llama.cpp {x['ppl']:.4f}, ln ratio {d.mean():+.5f} ± {se:.5f}", flush=True)
        if abs(d.mean()) - 2 * se > 0.001:
            failures.append(f"{qtype}: Osprey's file scores {o['ppl']:.4f} in Osprey, {x['ppl']:.4f} in llama.cpp "
                            f"(ln ratio {d.mean():+.5f} ± {se:.5f})")
        elif abs(d.mean()) + 2 * se > 0.001:
            inconclusive.append(f"{qtype}: same-file ln PPL ratio {d.mean():+.5f} ± {se:.5f}: too few tokens to "
                                f"show ±0.1%")

    fmt_t = lambda t: "-" if t is None else f"{t[0]:.1f} ({t[1]:.1f})"
    cross = lambda r: "-" if "cross_engine_ln_ratio" not in r else (
        f"{r['osprey_file_in_llama_cpp_ppl']:.4f} ({100 * r['cross_engine_ln_ratio']:+.3f} ± "
        f"{100 * r['cross_engine_ln_ratio_se']:.3f}%)")
    print(f"\n{args.chunks} chunks of {args.ctx} tokens; KL vs {os.path.basename(args.src)} "
          f"(PPL {src_ppl['ppl']:.4f}); sizes in MiB; quantize times: wall s (CPU s), {args.threads} threads\n")
    print("| type | size Osprey | size llama.cpp | quantize s Osprey | quantize s llama.cpp | PPL Osprey file | "
          "same file in llama.cpp (ln ratio ± s.e.) | PPL llama.cpp file | KL Osprey | KL llama.cpp | top-1 % Osprey |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, l = r["osprey"], r["llama"]
        print(f"| {r['type']} | {r['size_osprey'] / 2**20:.1f} | {r['size_llama'] / 2**20:.1f} | "
              f"{fmt_t(r['time_osprey'])} | {fmt_t(r['time_llama'])} | {o['ppl']:.4f} ± {o['ppl_err']:.4f} | "
              f"{cross(r)} | "
              f"{l['ppl']:.4f} | {o['kl']:.5f} | {l['kl']:.5f} | {o['top1']:.2f} |")
    print()
    for f in inconclusive:
        print("INCONCLUSIVE:", f)
    for f in failures:
        print("CHECK FAILED:", f)
    if not failures and not inconclusive:
        print("all checks passed: same file same PPL in both engines (±0.1%); Osprey ≤ llama-quantize + 0.5%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"source": args.src, "imatrix": imatrix, "source_ppl": src_ppl, "ctx": args.ctx, "chunks": args.chunks, "rows": rows}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
