"""§13 cases 38-40, 43, 44, 46 on /api/chat."""
import json

import ollama
import pytest

from conftest import MODEL, OPTS, http, jbody

MSG = [{"role": "user", "content": "Hi"}]


def test_chat_non_stream(client, url):  # 38
    r = client.chat(model=MODEL, messages=MSG, options={"num_predict": 8, **OPTS})
    assert r.message.role == "assistant" and isinstance(r.message.content, str) and r.message.content
    assert r.done and r.done_reason in ("stop", "length") and r.eval_count > 0 and r.prompt_eval_count > 0
    st, h, b = http(url, "POST", "/api/chat", {"model": MODEL, "messages": MSG, "stream": False,
                                               "options": {"num_predict": 2}})
    assert st == 200 and "context" not in jbody(b)


def test_chat_stream(client):  # 39
    whole = client.chat(model=MODEL, messages=MSG, options={"num_predict": 8, **OPTS}).message.content
    parts = list(client.chat(model=MODEL, messages=MSG, stream=True, options={"num_predict": 8, **OPTS}))
    assert all(p.message.role == "assistant" for p in parts)
    assert parts[-1].done and parts[-1].eval_count > 0
    assert all(not p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts) == whole


def test_chat_load_unload(url):  # 40
    st, h, b = http(url, "POST", "/api/chat", {"model": MODEL, "messages": []})
    r = jbody(b)
    assert r["done_reason"] == "load" and r["message"] == {"role": "assistant", "content": ""}
    r = jbody(http(url, "POST", "/api/chat", {"model": MODEL, "messages": [], "keep_alive": 0})[2])
    assert r["done_reason"] == "unload"


def test_chat_system_and_history(client):
    r = client.chat(model=MODEL, messages=[{"role": "system", "content": "You are terse."},
                                           {"role": "user", "content": "Hi"},
                                           {"role": "assistant", "content": "Hello."},
                                           {"role": "USER", "content": "Bye"}],
                    options={"num_predict": 4, **OPTS})
    assert r.done


def test_tools_unsupported_template(url):  # 43
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    st, h, b = http(url, "POST", "/api/chat", {"model": MODEL, "messages": MSG, "tools": tools})
    caps = jbody(http(url, "POST", "/api/show", {"model": MODEL})[2])["capabilities"]
    if "tools" in caps:
        pytest.skip("the model's template supports tools")
    assert st == 400 and jbody(b)["error"] == "registry.ollama.ai/library/smol:latest does not support tools"


def test_bad_message_images(url):  # 44
    st, h, b = http(url, "POST", "/api/chat", {"model": MODEL, "messages": [
        {"role": "user", "content": "x", "images": ["%%%"]}]})
    assert st == 400 and jbody(b)["error"].startswith("illegal base64 data")


def test_chat_unknown_and_missing_model(url, client):  # 46
    st, h, b = http(url, "POST", "/api/chat", {"model": "nope", "messages": MSG})
    assert st == 404 and jbody(b) == {"error": "model 'nope' not found"}
    st, h, b = http(url, "POST", "/api/chat", {"messages": MSG})
    assert st == 400 and jbody(b) == {"error": "model is required"}
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="nope", messages=MSG)
    assert e.value.status_code == 404
