#!/usr/bin/env python3
"""Aggregate generation throughput of `osprey serve` with 1, 4 and 8 concurrent streams.

  python3 bench/serve_throughput.py [--gguf PATH] [--parallel 8] [--tokens 64] [--streams 1 4 8]

Starts a server on a free loopback port with a temporary store and OSPREY_NUM_PARALLEL,
creates the model from the GGUF with `osprey create`, then for each stream count runs that
many /api/generate requests at once (different prompts, temperature 0.7, fixed seeds,
num_predict tokens) and reports sum(eval_count) / wall time, plus each stream's own rate.
"""
import argparse, json, os, threading, time

from local_server import LocalServer, post

HERE = os.path.dirname(os.path.abspath(__file__))
OSPREY = os.path.join(HERE, "..", "build", "tools", "osprey")
PROMPTS = ["Write a short story about a lighthouse keeper.", "Explain how a bicycle works.",
           "List some facts about the moon.", "Describe a walk in a forest in autumn."]


def generate(url, prompt, seed, n, out):
    out.append(json.loads(post(url, "/api/generate", {"model": "bench", "prompt": prompt, "stream": False,
                                                       "options": {"num_predict": n, "temperature": 0.7, "seed": seed}})))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.path.expanduser("~/.cache/osprey/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8])
    a = ap.parse_args()
    with LocalServer(OSPREY, a.threads, {"OSPREY_NUM_PARALLEL": str(a.parallel)}) as srv:
        srv.create("bench", a.gguf)
        url = srv.url
        generate(url, "warm up", 0, 4, [])
        print(f"model {os.path.basename(a.gguf)}, {a.threads} threads, OSPREY_NUM_PARALLEL={a.parallel}, "
              f"{a.tokens} tokens per stream\n")
        print("| streams | aggregate t/s | per-stream t/s (mean) | wall s |\n|---|---|---|---|")
        for k in a.streams:
            out, threads = [], []
            t0 = time.perf_counter()
            for i in range(k):
                th = threading.Thread(target=generate, args=(url, PROMPTS[i % len(PROMPTS)], 100 + i, a.tokens, out))
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
            wall = time.perf_counter() - t0
            toks = sum(r["eval_count"] for r in out)
            per = sum(r["eval_count"] / (r["eval_duration"] / 1e9) for r in out) / max(1, len(out))
            print(f"| {k} | {toks / wall:.1f} | {per:.1f} | {wall:.2f} |", flush=True)


if __name__ == "__main__":
    main()
