#!/usr/bin/env python3
"""Osprey vs llama.cpp, same model file, same threads, measured in the same run, interleaved.

  python3 bench/compare_llama_cpp.py [-p 512] [-n 128] [-d 0] [-r 3] [-t 2] MODEL.gguf...

For each model and repetition, alternately: `osprey bench -r 1 -o json` (a fresh process;
its own timers around each decode call, logits copy and argmax included), and llama.cpp
through llama-cpp-python (wall clock around `Llama.eval`, which also copies the last
logits out; its perf counters read zero through these bindings). pp = one batch
of P random tokens after D tokens of context; tg = N greedy single-token steps after D.
Prints a Markdown table of mean ± sd tokens/s and the ratio Osprey / llama.cpp of the means;
the paired ratio is the geometric mean of each repetition's ratio, with a 95% interval (the
engines run back to back in each repetition, in alternating order, so it is the robust one
when the machine drifts; each repetition's numbers go to stderr). For
generation the roofline: read bandwidth measured by build/bench/osprey-membw with the same
threads, between the repetitions of each model (on shared cloud machines it drifts by up to
2x within minutes; the table gives each model's mean), divided by the bytes one token reads (every weight once, except the token embedding
table, of which one row is read unless the output projection is tied to it, plus the K and
V cache rows at depth D), and the fraction of that roof each engine reaches (the mean over
repetitions of each one's tokens/s against the bandwidth measured just before it).
Needs build/tools/osprey, build/bench/osprey-membw, the `gguf` package and
`pip install llama-cpp-python==0.3.36`.
"""
import argparse, json, math, os, random, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
OSPREY = os.path.join(HERE, "..", "build", "tools", "osprey")
MEMBW = os.path.join(HERE, "..", "build", "bench", "osprey-membw")
CACHE_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # ggml type ids, for llama.cpp's type_k / type_v
CACHE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # per cached element


def bytes_per_token(model, depth, cache="f16"):
    """Bytes of weights and KV cache one generated token reads."""
    from gguf import GGUFReader
    r = GGUFReader(model)
    names = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(names.values())
    if "output.weight" in names and "token_embd.weight" in names:
        total -= names["token_embd.weight"]  # only one row of it is gathered
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    def kv(key, default=0):
        f = r.fields.get(f"{arch}.{key}")
        return int(f.parts[-1][0]) if f is not None else default
    n_layer, n_embd, n_head = kv("block_count"), kv("embedding_length"), kv("attention.head_count")
    n_head_kv = kv("attention.head_count_kv", n_head)
    head_k = kv("attention.key_length", n_embd // max(1, n_head))
    head_v = kv("attention.value_length", head_k)
    return total + int(depth * n_layer * n_head_kv * (head_k + head_v) * CACHE_BYTES[cache])


def bandwidth_gbps(threads):
    out = subprocess.run([MEMBW, "-t", str(threads), "-m", "512", "-r", "3"], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)["gbps"]


def osprey_once(model, a):
    out = subprocess.run([OSPREY, "bench", "-m", model, "-p", str(a.p), "-n", str(a.n), "-d", str(a.d), "-t",
                          str(a.t), "-r", "1", "-o", "json", "-k", a.cache, "-V", a.cache],
                         capture_output=True, text=True, check=True).stdout
    res = {r["test"].split(" ")[0][:2]: r["avg_ts"] for r in json.loads(out)}
    return res.get("pp", 0.0), res.get("tg", 0.0)


class LlamaCpp:
    def __init__(self, model, a):
        from llama_cpp import Llama
        # A quantized V cache needs llama.cpp's flash attention; f16 keeps its default.
        cache = {} if a.cache == "f16" else {"type_k": CACHE_TYPES[a.cache], "type_v": CACHE_TYPES[a.cache],
                                             "flash_attn": True}
        self.llm = Llama(model_path=model, n_ctx=a.d + max(a.p, a.n) + 8, n_batch=max(512, a.p), n_ubatch=max(512, a.p),
                         n_threads=a.t, n_threads_batch=a.t, verbose=False, **cache)
        self.a = a
        self.vocab = self.llm.n_vocab()

    def once(self):
        a, llm = self.a, self.llm
        rnd = lambda k: [random.randrange(self.vocab) for _ in range(k)]
        pp = tg = 0.0
        if a.p > 0:
            llm.reset()
            if a.d:
                llm.eval(rnd(a.d))
            toks = rnd(a.p)
            t0 = time.perf_counter()
            llm.eval(toks)
            pp = a.p / (time.perf_counter() - t0)
        if a.n > 0:
            llm.reset()
            if a.d:
                llm.eval(rnd(a.d))
            tok = random.randrange(self.vocab)
            t0 = time.perf_counter()
            for _ in range(a.n):  # the token fed back does not change the cost
                llm.eval([tok])
            tg = a.n / (time.perf_counter() - t0)
        return pp, tg


def paired_ratio(o, l):
    """Geometric mean of the per-repetition ratios and its 95% interval: each pair ran
    back to back, so a drift of the machine's bandwidth between repetitions cancels."""
    logs = [math.log(x / y) for x, y in zip(o, l) if x > 0 and y > 0]
    if not logs:
        return "-"
    mean = statistics.mean(logs)
    if len(logs) < 2:
        return f"{math.exp(mean):.2f}"
    # Student t quantiles (two-sided 95%) for df = 1..30; beyond, 2.04 (df = 30) is at most
    # 4% wide of the true one, never narrow.
    t = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13,
         2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04)
    df = len(logs) - 1
    h = t[min(df, len(t)) - 1] * statistics.stdev(logs) / math.sqrt(len(logs))
    return f"{math.exp(mean):.2f} [{math.exp(mean - h):.2f}, {math.exp(mean + h):.2f}]"


def fmt(xs):
    return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-d", type=int, default=0)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--cache", choices=sorted(CACHE_TYPES), default="f16", help="K and V cache type, both engines")
    a = ap.parse_args()
    random.seed(0)
    print(f"threads {a.t}, depth {a.d}, KV cache {a.cache}, {a.r} interleaved repetitions, read bandwidth "
          f"measured before each repetition\n")
    print("| model | test | osprey t/s | llama.cpp t/s | ratio | paired ratio [95%] | bandwidth GB/s | tg roof t/s | "
          "osprey % roof | llama.cpp % roof |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in a.models:
        lc = LlamaCpp(m, a)
        lc.once()  # warm-up
        osprey_once(m, a)
        o_pp, o_tg, l_pp, l_tg, bws = [], [], [], [], []
        for rep in range(a.r):
            bws.append(bandwidth_gbps(a.t))
            # Who goes first alternates: in a pair, the second run meets whatever the
            # machine's bandwidth has drifted to since the first.
            for engine in ((0, 1) if rep % 2 == 0 else (1, 0)):
                if engine == 0:
                    p, t = osprey_once(m, a); o_pp.append(p); o_tg.append(t)
                else:
                    p, t = lc.once(); l_pp.append(p); l_tg.append(t)
            print(f"{os.path.basename(m)} repetition {rep + 1}: {bws[-1]:.1f} GB/s; pp osprey {o_pp[-1]:.1f} "
                  f"llama.cpp {l_pp[-1]:.1f}; tg osprey {o_tg[-1]:.1f} llama.cpp {l_tg[-1]:.1f} t/s", file=sys.stderr)
        name = os.path.basename(m)
        d = (f" @ d{a.d}" if a.d else "") + (f" kv {a.cache}" if a.cache != "f16" else "")
        bw = statistics.mean(bws)
        per_token = bytes_per_token(m, a.d, a.cache)
        roof = bw * 1e9 / per_token
        # Each repetition's tokens/s against the bandwidth measured just before it.
        frac = lambda xs: statistics.mean(x * per_token / (b * 1e9) for x, b in zip(xs, bws))
        for test, o, l in (("pp%d%s" % (a.p, d), o_pp, l_pp), ("tg%d%s" % (a.n, d), o_tg, l_tg)):
            if statistics.mean(l) > 0 and statistics.mean(o) > 0:
                mo, ml = statistics.mean(o), statistics.mean(l)
                extra = (f" {fmt(bws)} | {roof:.1f} | {100 * frac(o):.0f}% | {100 * frac(l):.0f}% |"
                         if test.startswith("tg") else " | | | |")
                print(f"| {name} | {test} | {fmt(o)} | {fmt(l)} | {mo / ml:.2f} | {paired_ratio(o, l)} |{extra}")
        sys.stdout.flush()
        del lc


if __name__ == "__main__":
    main()
