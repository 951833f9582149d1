#!/usr/bin/env python3
"""Embedding throughput (sentences/s): `osprey serve` /api/embed on all-MiniLM-L6-v2 with
the 100 reference sentences of tests/scripts/gen_embed_ref.py, in batches of --batch, and
optionally sentence-transformers on the same sentences and thread count.

  bench/embed_throughput.py build/tools/osprey [--threads 2] [--batch 100] [--repeat 5] [--st]

--st needs torch + sentence-transformers (e.g. ~/.cache/osprey/refvenv/bin/python)."""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
from gen_embed_ref import SENTENCES  # noqa: E402

CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))


def post(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def bench_osprey(binary, threads, batch, repeat):
    ckpt = os.path.join(CACHE, "all-minilm-l6-v2")
    tmp = tempfile.mkdtemp(prefix="osprey-embed-bench-")
    try:
        gguf = os.path.join(tmp, "minilm.gguf")
        subprocess.run([binary, "convert", ckpt, "-o", gguf, "-q"], check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, OSPREY_HOST=f"127.0.0.1:{port}", OSPREY_MODELS=os.path.join(tmp, "models"))
        proc = subprocess.Popen([binary, "serve", "-t", str(threads)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(url + "/", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.05)
            modelfile = os.path.join(tmp, "Modelfile")
            with open(modelfile, "w") as f:
                f.write(f"FROM {gguf}\n")
            subprocess.run([binary, "create", "minilm", "-f", modelfile], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            post(url, "/api/embed", {"model": "minilm", "input": SENTENCES[:batch]})  # load + warm up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                for i in range(0, len(SENTENCES), batch):
                    post(url, "/api/embed", {"model": "minilm", "input": SENTENCES[i:i + batch]})
                times.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
