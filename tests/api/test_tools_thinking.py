"""Tool calling and thinking end to end (issue 5), with the official ollama and openai clients.

Tools: the real Qwen2.5-Coder-0.5B-Instruct GGUF, whose own chat template has a tool section
(`<tool_call>` JSON); greedy decoding makes it call the offered function. Thinking: a model
created over SmolLM2 with a Go TEMPLATE whose prompt opens a `<think>` section, checked against
the same prompt generated raw (the split must be exactly the model's own text)."""
import json
import os

import pytest

from conftest import MODEL, http, jbody

QWEN = "qwen-tools"
THINKER = "thinker"
GREEDY = {"temperature": 0, "seed": 1}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "description": "The city name"}}}}}
ASK = [{"role": "user", "content": "What is the weather like in Paris right now? Use the get_weather tool."}]

THINK_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ if .Thinking }}<think>{{ .Thinking }}</think>\n{{ end }}{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n{{ if .Think }}<think>\n{{ end }}")
# After a tool result the 0.5B model tends to call again; a follow-up turn makes it answer.
FOLLOW_UP = {"role": "user", "content": "Thanks. Now tell me the temperature in one sentence."}
QUESTION = "What is 2+2? Think step by step."


def qwen_path():
    cache = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
    path = os.path.join(cache, "qwen2.5-coder-0.5b-instruct.gguf")
    assert os.path.exists(path), f"{path} missing (run tools/fetch_models.py)"
    return path


@pytest.fixture(scope="module")
def qwen(client):
    digest = client.create_blob(qwen_path())
    client.create(model=QWEN, files={"model.gguf": digest})
    yield QWEN
    client.delete(QWEN)


@pytest.fixture(scope="module")
def thinker(client):
    client.create(model=THINKER, from_=MODEL, template=THINK_TEMPLATE, system="")
    yield THINKER
    client.delete(THINKER)


@pytest.fixture(scope="module")
def native_reply(url, qwen):
    """One non-streaming /api/chat reply with the tool offered, as raw JSON (generated once)."""
    st, _, b = http(url, "POST", "/api/chat", {"model": qwen, "messages": ASK, "tools": [WEATHER_TOOL],
                                               "stream": False, "options": GREEDY})
    assert st == 200, b
    return jbody(b)


def check_weather_call(call, index=0):
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["index"] == index
    assert call["id"].startswith("call_") and len(call["id"]) == 13
    args = call["function"]["arguments"]
    assert isinstance(args, dict) and "paris" in json.dumps(args).lower()


# ---- tools, native API ----

def test_capabilities(client, qwen, thinker):
    assert "tools" in client.show(qwen).capabilities
    assert "thinking" in client.show(thinker).capabilities


def test_tool_call_native(native_reply):
    # id, index inside function, arguments an object; the content is not the call's text.
    m = native_reply["message"]
    assert m["content"] == "" and native_reply["done_reason"] == "stop"
    assert len(m["tool_calls"]) == 1
    check_weather_call(m["tool_calls"][0])


def test_tool_call_native_stream(client, native_reply, qwen):
    parts = list(client.chat(model=qwen, messages=ASK, tools=[WEATHER_TOOL], options=GREEDY, stream=True))
    with_calls = [p for p in parts if p.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done and parts[-1].done
    assert with_calls[0].message.content == ""
    got = with_calls[0].message.tool_calls
    assert [(c.function.name, dict(c.function.arguments)) for c in got] == \
           [(c["function"]["name"], c["function"]["arguments"]) for c in native_reply["message"]["tool_calls"]]
    assert "".join(p.message.content for p in parts) == ""


def test_tool_result_fed_back(client, native_reply, qwen):
    call = native_reply["message"]
    msgs = ASK + [call, {"role": "tool", "tool_name": "get_weather",
                         "content": json.dumps({"city": "Paris", "temperature_celsius": 23, "sky": "sunny"})},
                  FOLLOW_UP]
    r = client.chat(model=qwen, messages=msgs, tools=[WEATHER_TOOL], options={**GREEDY, "num_predict": 48})
    assert not r.message.tool_calls
    assert "23" in r.message.content


def test_tools_without_call_stream_as_content(client, qwen):
    # A question the model answers itself: ordinary content, streamed, no calls.
    msgs = [{"role": "user", "content": "Say hello in French. Reply with one word."}]
    parts = list(client.chat(model=qwen, messages=msgs, tools=[WEATHER_TOOL], options={**GREEDY, "num_predict": 8},
                             stream=True))
    text = "".join(p.message.content for p in parts)
    assert text.strip() and not any(p.message.tool_calls for p in parts)


def test_tool_call_go_template(client, qwen):
    # The same model under an Ollama-style Go TEMPLATE (ChatML with tools, tests/data/chat/go):
    # the call syntax comes from the template's {{ if .ToolCalls }} block instead.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "data", "chat", "go", "chatml.gotmpl"), encoding="utf-8") as f:
        client.create(model="qwen-go", from_=qwen, template=f.read())
    try:
        assert "tools" in client.show("qwen-go").capabilities
        r = client.chat(model="qwen-go", messages=ASK, tools=[WEATHER_TOOL], options=GREEDY)
        assert r.message.content == "" and [c.function.name for c in r.message.tool_calls] == ["get_weather"]
        assert "paris" in json.dumps(dict(r.message.tool_calls[0].function.arguments)).lower()
    finally:
        client.delete("qwen-go")


# ---- tools, OpenAI API ----

def test_tool_call_openai(oai, url, qwen):
    r = oai.chat.completions.create(model=qwen, messages=ASK, tools=[WEATHER_TOOL], temperature=0, seed=1)
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls" and ch.message.content == ""
    tc = ch.message.tool_calls[0]
    assert tc.type == "function" and tc.function.name == "get_weather" and tc.id.startswith("call_")
    args = json.loads(tc.function.arguments)  # a JSON string on /v1
    assert "paris" in json.dumps(args).lower()
    # Feed the call and its result back: tool_name comes from the call the id refers to.
    msgs = ASK + [ch.message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": tc.id, "content": '{"temperature_celsius": 23}'}, FOLLOW_UP]
    r2 = oai.chat.completions.create(model=qwen, messages=msgs, tools=[WEATHER_TOOL], temperature=0, seed=1,
                                     max_tokens=48)
    assert r2.choices[0].finish_reason == "stop" and "23" in r2.choices[0].message.content


def test_tool_call_openai_stream(oai, qwen):
    stream = oai.chat.completions.create(model=qwen, messages=ASK, tools=[WEATHER_TOOL], temperature=0, seed=1,
                                         stream=True)
    by_index, finish = {}, None
    for chunk in stream:
        d = chunk.choices[0].delta
        for tc in d.tool_calls or []:
            slot = by_index.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += tc.id or ""
            slot["name"] += tc.function.name or ""
            slot["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and list(by_index) == [0]
    assert by_index[0]["name"] == "get_weather" and by_index[0]["id"].startswith("call_")
    assert "paris" in json.dumps(json.loads(by_index[0]["arguments"])).lower()


def test_openai_bad_tool_call_arguments(url, qwen):
    msgs = ASK + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{not json"}}]}]
    st, _, b = http(url, "POST", "/v1/chat/completions", {"model": qwen, "messages": msgs})
    assert st == 400 and jbody(b)["error"]["message"] == "invalid tool call arguments"


# ---- thinking ----

def raw_reply(client, prompt, n=24):
    return client.generate(model=THINKER, prompt=prompt, raw=True, options={**GREEDY, "num_predict": n}).response


def split_like_ollama(text):
    """The expected split of a reply whose prompt opened <think>: reasoning up to </think>
    (whitespace around it dropped), the rest is the answer."""
    if "</think>" in text:
        thinking, content = text.split("</think>", 1)
        return thinking.strip(), content.lstrip()
    return text.lstrip(), ""


@pytest.fixture(scope="module")
def want_split(client, thinker):
    """The model's own reply to the thinking prompt, generated raw, split as Ollama splits it."""
    prompt = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n"
    thinking, content = split_like_ollama(raw_reply(client, prompt))
    assert thinking
    return thinking, content


def test_think_generate(client, thinker, want_split):
    r = client.generate(model=thinker, prompt=QUESTION, think=True, options={**GREEDY, "num_predict": 24})
    assert (r.thinking, r.response) == want_split
    # A level is thinking on too (and reaches the template as .ThinkLevel).
    parts = list(client.generate(model=thinker, prompt=QUESTION, think="high", stream=True,
                                 options={**GREEDY, "num_predict": 24}))
    assert "".join(p.thinking or "" for p in parts) == want_split[0]
    assert "".join(p.response for p in parts) == want_split[1]


def test_think_false(client, thinker):
    prompt = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    want = raw_reply(client, prompt, 12)
    r = client.generate(model=thinker, prompt=QUESTION, think=False, options={**GREEDY, "num_predict": 12})
    assert not r.thinking and r.response == want
    c = client.chat(model=thinker, messages=[{"role": "user", "content": QUESTION}], think=False,
                    options={**GREEDY, "num_predict": 12})
    assert not c.message.thinking and c.message.content == want


def test_think_chat_and_openai(client, oai, thinker, want_split):
    want_thinking, want_content = want_split
    msgs = [{"role": "user", "content": QUESTION}]
    c = client.chat(model=thinker, messages=msgs, think=True, options={**GREEDY, "num_predict": 24})
    assert (c.message.thinking, c.message.content) == (want_thinking, want_content)
    # `think` absent: on by default for a thinking model (§6.1).
    parts = list(client.chat(model=thinker, messages=msgs, stream=True, options={**GREEDY, "num_predict": 24}))
    assert "".join(p.message.thinking or "" for p in parts) == want_thinking
    # /v1: reasoning_effort turns thinking on; the text comes as reasoning_content (and Ollama's `reasoning`).
    r = oai.chat.completions.create(model=thinker, messages=msgs, reasoning_effort="low", temperature=0, seed=1,
                                    max_tokens=24)
    m = r.choices[0].message
    assert m.model_extra["reasoning_content"] == want_thinking and m.model_extra["reasoning"] == want_thinking
    assert m.content == want_content
    got = ""
    for chunk in oai.chat.completions.create(model=thinker, messages=msgs, reasoning_effort="low", temperature=0,
                                             seed=1, max_tokens=24, stream=True):
        got += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content", "") if chunk.choices else ""
    assert got == want_thinking
    # Prior thinking is fed back to the template.
    st_prompt = client.chat(model=thinker, messages=msgs + [
        {"role": "assistant", "content": "4", "thinking": "2+2=4"}, {"role": "user", "content": "And 3+3?"}],
        think=True, options={**GREEDY, "num_predict": 4})
    assert st_prompt.done


def test_think_unsupported(url):
    st, _, b = http(url, "POST", "/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                                               "think": True})
    assert st == 400 and jbody(b)["error"] == '"smol" does not support thinking'
