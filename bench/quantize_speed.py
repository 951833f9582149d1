#!/usr/bin/env python3
"""Quantize speed: `osprey quantize` against llama.cpp's llama-quantize (`llama_model_quantize`
from llama-cpp-python's sources), same source file, same types, same thread count.

The two run alternately, R rounds per type, and the table gives the median wall and CPU
seconds of each with the ratio llama.cpp / Osprey (above 1: Osprey is faster). CPU time (user,
all threads) is the fairer number on a loaded machine. llama.cpp's CPU time includes no Python
start-up (it is measured inside this process); Osprey's includes its own process start.

  python3 bench/quantize_speed.py --src ~/.cache/osprey/quant/smollm2-135m-f32.gguf \\
      --types Q4_K_M,Q6_K -t 2 -r 3 [--imatrix FILE.imatrix.gguf]
"""
import argparse, os, statistics, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_quality import ROOT, TYPES, llama_quantize, osprey_quantize  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="F32/F16/BF16 source GGUF")
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--osprey", default=os.path.join(ROOT, "build", "tools", "osprey"))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--imatrix", help="importance matrix (GGUF, from `osprey imatrix`) for both quantizers")
    a = ap.parse_args()
    if a.rounds < 1 or a.threads < 1:
        sys.exit("--rounds and --threads must be positive")
    if not os.path.exists(a.src):
        sys.exit(f"no such source file: {a.src}")
    types = [t.strip().upper() for t in a.types.split(",") if t.strip()]
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        sys.exit(f"unknown type(s) {', '.join(unknown)}; known: {', '.join(TYPES)}")
    print(f"source {os.path.basename(a.src)}, {a.threads} threads, {a.rounds} alternating rounds per type"
          + (f", imatrix {os.path.basename(a.imatrix)}" if a.imatrix else "") + "; medians")
    print("| type | Osprey wall s | Osprey CPU s | llama-quantize wall s | llama-quantize CPU s | CPU ratio llama / Osprey |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for t in types:
            o, l = [], []
            for r in range(a.rounds):
                order = [0, 1] if r % 2 == 0 else [1, 0]
                for who in order:
                    if who == 0:
                        o.append(osprey_quantize(a.osprey, a.src, os.path.join(d, "o.gguf"), t, a.threads, False, a.imatrix))
                    else:
                        l.append(llama_quantize(a.src, os.path.join(d, "l.gguf"), t, a.threads, False, a.imatrix))
            ow, oc = statistics.median(x[0] for x in o), statistics.median(x[1] for x in o)
            lw, lc = statistics.median(x[0] for x in l), statistics.median(x[1] for x in l)
            print(f"| {t} | {ow:.2f} | {oc:.2f} | {lw:.2f} | {lc:.2f} | {lc / oc:.2f} |", flush=True)


if __name__ == "__main__":
    main()
