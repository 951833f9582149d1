"""/api/pull with the registry protocol against a local registry that serves the manifest and
blobs of a model from another store (§13 case 62, success path), and scheduler limits."""
import hashlib
import http.server
import json
import os
import threading
import time

import ollama

from conftest import MODEL, OPTS, Server, http as req, install_model, jbody


class Registry(http.server.ThreadingHTTPServer):
    def __init__(self, store_dir):
        self.store_dir = store_dir
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        root = self.server.store_dir
        parts = self.path.split("/")  # /v2/library/<model>/manifests/<tag> or .../blobs/<digest>
        if len(parts) == 6 and parts[4] == "manifests" and parts[3] == "pulled":
            path = os.path.join(root, "manifests", "registry.ollama.ai", "library", MODEL, "latest")
            ctype = "application/vnd.docker.distribution.manifest.v2+json"
        elif len(parts) == 6 and parts[4] == "blobs":
            path = os.path.join(root, "blobs", parts[5].replace(":", "-"))
            ctype = "application/octet-stream"
        else:
            path = None
        if not path or not os.path.exists(path):
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            return
        data = open(path, "rb").read()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


def test_pull_from_local_registry(server):
    reg = Registry(server.models)
    threading.Thread(target=reg.serve_forever, daemon=True).start()
    s = Server({"OSPREY_REGISTRY": f"http://127.0.0.1:{reg.server_address[1]}"})
    try:
        c = ollama.Client(host=s.url)
        lines = list(c.pull("pulled", stream=True, insecure=True))
        assert lines[0].status == "pulling manifest" and lines[-1].status == "success"
        assert any(l.digest and l.total for l in lines)
        tags = {m.model: m.digest for m in c.list().models}
        assert "pulled:latest" in tags
        assert c.generate(model="pulled", prompt="hi", options={"num_predict": 2, **OPTS}).done
        r = c.pull("pulled")  # again: everything present
        assert r.status == "success"
        st, h, b = req(s.url, "POST", "/api/pull", {"model": "missing-model", "stream": False})
        assert st >= 400 and "error" in jbody(b)
    finally:
        s.stop()
        reg.shutdown()


def test_max_loaded_models_and_context_errors():
    s = Server({"OSPREY_MAX_LOADED_MODELS": "1"})
    try:
        install_model(s.url)
        c = ollama.Client(host=s.url)
        c.copy(MODEL, "other")
        c.generate(model=MODEL, prompt="")
        c.generate(model="other", prompt="")
        assert [m.model for m in c.ps().models] == ["other:latest"]  # the idle one was evicted
        # A prompt longer than the context is a clear 400, not a crash.
        st, h, b = req(s.url, "POST", "/api/generate", {"model": MODEL, "prompt": "word " * 300, "stream": False,
                                                         "options": {"num_ctx": 64}})
        assert st == 400 and "context length" in jbody(b)["error"]
        assert c.generate(model=MODEL, prompt="hi", options={"num_predict": 1}).done
    finally:
        s.stop()
