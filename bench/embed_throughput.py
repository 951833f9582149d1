#!/usr/bin/env python3
"""Embedding throughput (sentences/s): `osprey serve` /api/embed on all-MiniLM-L6-v2 with
the 100 reference sentences of tests/scripts/gen_embed_ref.py, in batches of --batch, and
optionally sentence-transformers on the same sentences and thread count.

  bench/embed_throughput.py build/tools/osprey [--threads 2] [--batch 100] [--repeat 5] [--st]

--st needs torch + sentence-transformers (e.g. ~/.cache/osprey/refvenv/bin/python)."""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
from gen_embed_ref import SENTENCES  # noqa: E402
from local_server import LocalServer, post  # noqa: E402

CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))


def bench_osprey(binary, threads, batch, repeat):
    ckpt = os.path.join(CACHE, "all-minilm-l6-v2")
    with LocalServer(binary, threads) as srv:
        gguf = os.path.join(srv.store, "minilm.gguf")
        subprocess.run([binary, "convert", ckpt, "-o", gguf, "-q"], check=True)
        srv.create("minilm", gguf)
        post(srv.url, "/api/embed", {"model": "minilm", "input": SENTENCES[:batch]})  # load + warm up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for i in range(0, len(SENTENCES), batch):
                post(srv.url, "/api/embed", {"model": "minilm", "input": SENTENCES[i:i + batch]})
            times.append(time.perf_counter() - t0)
    return len(SENTENCES) / min(times), len(SENTENCES) / (sum(times) / len(times))


def bench_st(threads, batch, repeat):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(threads)
    m = SentenceTransformer(os.path.join(CACHE, "all-minilm-l6-v2"), device="cpu")
    m.encode(SENTENCES[:batch], batch_size=batch)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        m.encode(SENTENCES, batch_size=batch, normalize_embeddings=True)
        times.append(time.perf_counter() - t0)
    return len(SENTENCES) / min(times), len(SENTENCES) / (sum(times) / len(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("osprey")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--st", action="store_true", help="also time sentence-transformers")
    a = ap.parse_args()
    best, mean = bench_osprey(a.osprey, a.threads, a.batch, a.repeat)
    print(f"osprey /api/embed  threads={a.threads} batch={a.batch}: {best:.1f} sentences/s best, {mean:.1f} mean")
    if a.st:
        best, mean = bench_st(a.threads, a.batch, a.repeat)
        print(f"sentence-transformers threads={a.threads} batch={a.batch}: {best:.1f} sentences/s best, {mean:.1f} mean")


if __name__ == "__main__":
    main()
