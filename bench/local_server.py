"""A throwaway `osprey serve` for benchmarks: a free loopback port, its own temporary store,
a clean environment (no OLLAMA_* / OSPREY_* settings leak in), and `create` of a model from a
GGUF. Use as a context manager; the server is stopped and the store removed on exit."""
import json, os, shutil, socket, subprocess, tempfile, time, urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, path, body, timeout=600):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


class LocalServer:
    def __init__(self, binary, threads, env_extra=None):
        self.binary = binary
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.store = tempfile.mkdtemp(prefix="osprey-bench-")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OSPREY_"))}
        self.env.update({"OSPREY_HOST": f"127.0.0.1:{port}", "OSPREY_MODELS": self.store, **(env_extra or {})})
        self.proc = subprocess.Popen([binary, "serve", "-t", str(threads)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("osprey serve did not start")

    def create(self, name, gguf):
        modelfile = os.path.join(self.store, "Modelfile")
        with open(modelfile, "w") as f:
            f.write(f"FROM {gguf}\n")
        subprocess.run([self.binary, "create", name, "-f", modelfile], env=self.env, check=True, capture_output=True)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.store, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
