"""§13 cases 63-67, 72, 74 and the openai client smoke test of 77."""
import json

import openai
import pytest

from conftest import MODEL, http, jbody

MSG = [{"role": "user", "content": "Hi"}]


def test_chat_completion(oai):  # 63
    r = oai.chat.completions.create(model=MODEL, messages=MSG, max_tokens=8, temperature=0, seed=1)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and isinstance(r.created, int)
    assert r.model == MODEL and isinstance(r.system_fingerprint, str)
    c = r.choices[0]
    assert c.index == 0 and c.message.role == "assistant" and isinstance(c.message.content, str)
    assert c.finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_completion_stream(oai, url):  # 64
    chunks = list(oai.chat.completions.create(model=MODEL, messages=MSG, max_tokens=8, temperature=0, seed=1,
                                              stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    fin = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(fin) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    st, h, b = http(url, "POST", "/v1/chat/completions", {"model": MODEL, "messages": MSG, "max_tokens": 2,
                                                           "stream": True})
    assert h["Content-Type"].startswith("text/event-stream")
    frames = [f for f in b.decode().split("\n\n") if f]
    assert frames[-1] == "data: [DONE]" and all(f.startswith("data: ") for f in frames)


def test_max_tokens_one(oai):  # 65
    r = oai.chat.completions.create(model=MODEL, messages=MSG, max_tokens=1)
    assert r.choices[0].finish_reason == "length"


def test_openai_errors(url, oai):  # 66, 67
    st, h, b = http(url, "POST", "/v1/chat/completions", {"model": MODEL, "messages": []})
    assert st == 400 and jbody(b) == {"error": {"message": "[] is too short - 'messages'",
                                                "type": "invalid_request_error", "param": None, "code": None}}
    st, h, b = http(url, "POST", "/v1/chat/completions", raw=b"{bad")
    assert st == 400 and jbody(b)["error"]["type"] == "invalid_request_error"
    st, h, b = http(url, "POST", "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": 123}]})
    assert st == 400 and jbody(b)["error"]["message"] == "invalid message content type: float64"
    with pytest.raises(openai.NotFoundError) as e:
        oai.chat.completions.create(model="nope", messages=MSG)
    assert e.value.body["message"] == "model 'nope' not found" and e.value.body["type"] == "not_found_error"


def test_completions(oai, url):  # 72
    r = oai.completions.create(model=MODEL, prompt="Once upon", max_tokens=4, temperature=0)
    assert r.object == "text_completion" and r.id.startswith("cmpl-") and isinstance(r.choices[0].text, str)
    assert r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens > 0
    assert http(url, "POST", "/v1/completions", {"model": MODEL, "prompt": ["a", "b"]})[0] == 400
    st, h, b = http(url, "POST", "/v1/completions", {"model": MODEL, "prompt": "a", "stop": [1]})
    assert st == 400 and jbody(b)["error"]["message"] == "invalid type for 'stop' field: float64"
    chunks = list(oai.completions.create(model=MODEL, prompt="Once upon", max_tokens=3, stream=True,
                                         stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_models(oai):  # 74
    ids = [m.id for m in oai.models.list().data]
    assert MODEL + ":latest" in ids
    m = oai.models.retrieve(MODEL)
    assert m.id == MODEL and m.object == "model" and m.owned_by == "library"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope")


def test_reasoning_effort(url, oai):  # 71
    st, h, b = http(url, "POST", "/v1/chat/completions", {"model": MODEL, "messages": MSG,
                                                           "reasoning_effort": "bogus"})
    assert st == 400 and jbody(b)["error"]["message"].startswith("invalid reasoning value")
    r = oai.chat.completions.create(model=MODEL, messages=MSG, max_tokens=1, reasoning_effort="none")
    assert r.choices[0].finish_reason == "length"
