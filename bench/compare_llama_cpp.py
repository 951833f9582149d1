#!/usr/bin/env python3
"""Osprey vs llama.cpp, same model file, same threads, measured in the same run, interleaved.

  python3 bench/compare_llama_cpp.py [-p 512] [-n 128] [-d 0] [-r 3] [-t 2] MODEL.gguf...

For each model and repetition, alternately: `osprey bench -r 1 -o json` (a fresh process;
its own timers around each decode call, logits copy and argmax included), and llama.cpp
through llama-cpp-python (wall clock around `Llama.eval`, which also copies the last
logits out; its perf counters read zero through these bindings). pp = one batch
of P random tokens after D tokens of context; tg = N greedy single-token steps after D.
Prints a Markdown table of mean ± sd tokens/s and the ratio Osprey / llama.cpp.
Needs build/tools/osprey and `pip install llama-cpp-python==0.3.36`.
"""
import argparse, json, os, random, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
OSPREY = os.path.join(HERE, "..", "build", "tools", "osprey")


def osprey_once(model, a):
    out = subprocess.run([OSPREY, "bench", "-m", model, "-p", str(a.p), "-n", str(a.n), "-d", str(a.d), "-t",
                          str(a.t), "-r", "1", "-o", "json"], capture_output=True, text=True, check=True).stdout
    res = {r["test"].split(" ")[0][:2]: r["avg_ts"] for r in json.loads(out)}
    return res.get("pp", 0.0), res.get("tg", 0.0)


class LlamaCpp:
    def __init__(self, model, a):
        from llama_cpp import Llama
        self.llm = Llama(model_path=model, n_ctx=a.d + max(a.p, a.n) + 8, n_batch=max(512, a.p), n_ubatch=max(512, a.p),
                         n_threads=a.t, n_threads_batch=a.t, verbose=False)
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
    a = ap.parse_args()
    random.seed(0)
    print(f"threads {a.t}, depth {a.d}, {a.r} interleaved repetitions\n")
    print("| model | test | osprey t/s | llama.cpp t/s | ratio |\n|---|---|---|---|---|")
    for m in a.models:
        lc = LlamaCpp(m, a)
        lc.once()  # warm-up
        osprey_once(m, a)
        o_pp, o_tg, l_pp, l_tg = [], [], [], []
        for _ in range(a.r):
            p, t = osprey_once(m, a); o_pp.append(p); o_tg.append(t)
            p, t = lc.once(); l_pp.append(p); l_tg.append(t)
        name = os.path.basename(m)
        d = f" @ d{a.d}" if a.d else ""
        for test, o, l in (("pp%d%s" % (a.p, d), o_pp, l_pp), ("tg%d%s" % (a.n, d), o_tg, l_tg)):
            if statistics.mean(l) > 0 and statistics.mean(o) > 0:
                print(f"| {name} | {test} | {fmt(o)} | {fmt(l)} | {statistics.mean(o) / statistics.mean(l):.2f} |")
        sys.stdout.flush()
        del lc


if __name__ == "__main__":
    main()
