"""§13 cases 1-10: routing, decoding, errors, CORS, host guard, body limit."""
import socket

from conftest import http, jbody


def test_health(url):  # 1
    st, h, b = http(url, "GET", "/")
    assert st == 200 and b == b"Ollama is running"
    assert http(url, "HEAD", "/")[0] == 200


def test_version(url):  # 2
    st, h, b = http(url, "GET", "/api/version")
    assert st == 200
    v = jbody(b)["version"]
    assert all(p.isdigit() for p in v.split("."))
    assert http(url, "HEAD", "/api/version")[0] == 200


def test_unknown_path_and_method(url):  # 3
    st, h, b = http(url, "GET", "/api/does-not-exist")
    assert st == 404 and "error" in jbody(b)
    st, h, b = http(url, "GET", "/api/chat")
    assert st == 405 and "error" in jbody(b)


def test_missing_body(url):  # 4
    for p in ["/api/generate", "/api/chat", "/api/show", "/api/create", "/api/copy", "/api/pull"]:
        st, h, b = http(url, "POST", p, raw=b"")
        assert st == 400, p
        assert jbody(b) == {"error": "missing request body"}, p


def test_malformed_json(url):  # 5
    st, h, b = http(url, "POST", "/api/chat", raw=b'{"model":')
    assert st == 400 and jbody(b)["error"] == "unexpected EOF"
    st, h, b = http(url, "POST", "/api/chat", raw=b"{bad}")
    assert st == 400 and "invalid character" in jbody(b)["error"]


def test_wrong_type_and_case_insensitive_keys(url):  # 6, 7
    st, h, b = http(url, "POST", "/api/generate", {"model": "smol", "prompt": "hi", "stream": "yes"})
    assert st == 400
    assert "cannot unmarshal string" in jbody(b)["error"] and "stream" in jbody(b)["error"]
    st, h, b = http(url, "POST", "/api/show", {"Model": "smol", "unknown_field": 1})
    assert st == 200 and "model_info" in jbody(b)


def test_cors_preflight(url):  # 8
    st, h, b = http(url, "OPTIONS", "/api/chat", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-stainless-os"})
    assert st == 204
    assert h["Access-Control-Allow-Origin"] == "http://localhost:3000"
    allow = h["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allow and "x-stainless-os" in allow


def test_cors_rejects_foreign_origin(url):  # 9 (first half; the env half is below)
    st, h, b = http(url, "GET", "/api/tags", headers={"Origin": "https://evil.example"})
    assert st == 403


def test_cors_origins_env():  # 9 (second half)
    from conftest import Server
    s = Server({"OSPREY_ORIGINS": "https://evil.example"})
    try:
        st, h, b = http(s.url, "GET", "/api/tags", headers={"Origin": "https://evil.example"})
        assert st == 200 and h["Access-Control-Allow-Origin"] == "https://evil.example"
    finally:
        s.stop()


def test_host_header_guard(server):
    # DNS rebinding: a loopback listener answers only to local host names.
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"GET /api/tags HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    resp = b""
    while chunk := s.recv(4096):
        resp += chunk
    s.close()
    assert resp.startswith(b"HTTP/1.1 403")
    assert http(server.url, "GET", "/api/tags", headers={"Host": "localhost:11434"})[0] == 200


def test_oversize_body(url):  # 10
    s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2147483648\r\n\r\n{")
    resp = s.recv(4096)
    s.close()
    assert resp.startswith(b"HTTP/1.1 413")
    assert http(url, "GET", "/")[0] == 200
