#!/usr/bin/env python3
"""Generation tokens/s with and without a JSON schema (structured outputs), through a running
`osprey serve` (or Ollama):

    bench/structured_speed.py --url http://127.0.0.1:11434 --model smol [--runs 5]

Each request generates with temperature 0.8 from the same prompt; tokens/s is the server's
eval_count / eval_duration, so prompt processing and HTTP are excluded. The schema run reports
the same rate over its (shorter, JSON) outputs, which includes computing token masks."""
import argparse
import json
import statistics
import urllib.request

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 6},
        "bio": {"type": "string", "maxLength": 300},
    },
    "required": ["name", "age", "email", "tags", "bio"],
    "additionalProperties": False,
}
PROMPT = "Invent a detailed profile of a person: name, age, email, a few tags and a long biography. Answer in JSON."


def generate(url, model, fmt, seed, n):
    body = {"model": model, "prompt": PROMPT, "stream": False,
            "options": {"temperature": 0.8, "seed": seed, "num_predict": n}}
    if fmt is not None:
        body["format"] = fmt
    req = urllib.request.Request(url + "/api/generate", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.loads(r.read())
    return out["eval_count"], out["eval_duration"] / 1e9, out["response"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:11434")
    ap.add_argument("--model", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("-n", type=int, default=256)
    a = ap.parse_args()
    generate(a.url, a.model, None, 0, 8)  # load the model
    for label, fmt in (("no format", None), ("format: json", "json"), ("format: schema", SCHEMA)):
        rates, counts = [], []
        for seed in range(a.runs):
            n, s, _ = generate(a.url, a.model, fmt, seed + 1, a.n)
            rates.append(n / s)
            counts.append(n)
        sd = statistics.stdev(rates) if len(rates) > 1 else 0.0
        print(f"{label:15s} {statistics.mean(rates):7.1f} ± {sd:5.1f} tokens/s  (mean {statistics.mean(counts):.0f} tokens/run, {a.runs} runs)")


if __name__ == "__main__":
    main()
