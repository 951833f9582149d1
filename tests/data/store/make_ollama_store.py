#!/usr/bin/env python3
"""Writes tests/data/store/ollama: a tiny model store laid out the way Ollama writes one
(compact Go-style JSON manifests, sha256-<hex> blobs, a legacy .prompt template layer, a
config blob with rootfs), so the store tests read a layout we did not produce ourselves.
Re-run to regenerate; the output is committed."""
import hashlib
import json
import os
import shutil
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ollama")


def gguf(arch, file_type):
    """A metadata-only GGUF v3: general.architecture (string), general.file_type (u32)."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = s("general.architecture") + struct.pack("<I", 8) + s(arch)
    kv += s("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", file_type)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv


def blob(data):
    if isinstance(data, str):
        data = data.encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(OUT, "blobs", digest.replace(":", "-")), "wb") as f:
        f.write(data)
    return digest, len(data)


def layer(media, data):
    d, n = blob(data)
    return {"mediaType": "application/vnd.ollama.image." + media, "digest": d, "size": n}


def model(path, config, layers):
    cfg = json.dumps(config, separators=(",", ":"))
    d, n = blob(cfg)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d, "size": n},
                "layers": layers}
    full = os.path.join(OUT, "manifests", *path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(json.dumps(manifest, separators=(",", ":")))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "blobs"))
    weights = layer("model", gguf("llama", 2))
    rootfs = {"type": "layers", "diff_ids": [weights["digest"]]}
    model(["registry.ollama.ai", "library", "tinyllama", "latest"],
          {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
           "model_type": "1.1B", "file_type": "Q4_0", "architecture": "amd64", "os": "linux", "rootfs": rootfs},
          [weights,
           layer("prompt", "<|user|>\n{{ .Prompt }}</s>\n<|assistant|>\n"),
           layer("system", "You are a fixture."),
           layer("params", json.dumps({"stop": ["<|user|>", "</s>"], "temperature": 0.6})),
           layer("license", "MIT")])
    model(["registry.ollama.ai", "someone", "other", "7b"],
          {"model_format": "gguf", "model_family": "qwen2", "model_families": ["qwen2"],
           "model_type": "7B", "file_type": "Q4_K_M", "architecture": "amd64", "os": "linux"},
          [layer("model", gguf("qwen2", 15)), layer("template", "{{ .Prompt }}")])


if __name__ == "__main__":
    main()
