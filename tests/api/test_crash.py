"""A server killed (SIGKILL) mid-upload or mid-create leaves a valid store: after a restart
every listed model resolves and runs, and a half-uploaded blob does not exist."""
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time

import ollama

from conftest import MODEL, Server, http, install_model


def create_quietly(url, name):
    try:
        http(url, "POST", "/api/create", {"model": name, "from": MODEL, "system": "x" * 100000}, timeout=30)
    except OSError:
        pass  # the server was killed under us: that is the point


def test_kill_during_upload_and_create():
    d = tempfile.mkdtemp(prefix="osprey-crash-")
    try:
        s = Server(models_dir=d)
        digest = install_model(s.url)
        # Half a blob, then the server dies.
        data = os.urandom(4 << 20)
        bd = "sha256:" + hashlib.sha256(data).hexdigest()
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(b"POST /api/blobs/" + bd.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data[: len(data) // 2])
        time.sleep(0.3)
        s.proc.kill()
        s.proc.wait()
        sock.close()
        # Creates killed at a few points in their progress.
        for delay in (0.0, 0.02, 0.1):
            s = Server(models_dir=d)
            t = threading.Thread(target=create_quietly, args=(s.url, f"c{int(delay * 100)}"))
            t.start()
            time.sleep(delay)
            s.proc.kill()
            s.proc.wait()
            t.join()
        s = Server(models_dir=d)
        try:
            assert http(s.url, "HEAD", "/api/blobs/" + bd)[0] == 404
            c = ollama.Client(host=s.url)
            for m in c.list().models:
                c.show(m.model)  # every listed model resolves with its blobs present
            assert c.generate(model=MODEL, prompt="hi", options={"num_predict": 1}).done
        finally:
            s.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
