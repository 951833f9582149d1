"""Fixtures: a real `osprey serve` on a free loopback port with a temporary model store
holding SmolLM2 created from its GGUF (uploaded as a blob, like `ollama create` does)."""
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

MODEL = "smol"
OPTS = {"temperature": 0, "seed": 1}


def free_port():
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env_extra=None, models_dir=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.own_dir = models_dir is None
        self.models = models_dir or tempfile.mkdtemp(prefix="osprey-api-")
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("OLLAMA_", "OSPREY_")) and k not in ("OSPREY_BIN", "OSPREY_TEST_GGUF"):
                del env[k]
        env.update({"OSPREY_HOST": f"127.0.0.1:{self.port}", "OSPREY_MODELS": self.models,
                    "OSPREY_REGISTRY": f"http://127.0.0.1:{free_port()}"})
        env.update(env_extra or {})
        self.log = open(os.path.join(self.models, f"serve-{self.port}.log"), "w")
        self.proc = subprocess.Popen([os.environ["OSPREY_BIN"], "serve", "-t", "2"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("osprey serve did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if self.own_dir:
            shutil.rmtree(self.models, ignore_errors=True)


def gguf_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def install_model(url, name=MODEL):
    import ollama
    c = ollama.Client(host=url)
    path = os.environ["OSPREY_TEST_GGUF"]
    digest = c.create_blob(path)
    c.create(model=name, files={"model.gguf": digest})
    return digest


@pytest.fixture(scope="session")
def server():
    s = Server({"OSPREY_NUM_PARALLEL": "4"})
    install_model(s.url)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def url(server):
    return server.url


@pytest.fixture(scope="session")
def client(url):
    import ollama
    return ollama.Client(host=url)


@pytest.fixture(scope="session")
def oai(url):
    import openai
    return openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)


def http(url, method, path, body=None, headers=None, raw=None, timeout=120):
    """Plain HTTP, for what the official clients cannot express. Returns (status, headers, bytes)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def jbody(b):
    return json.loads(b.decode())
