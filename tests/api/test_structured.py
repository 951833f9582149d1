"""Structured outputs (§6.3, §13 cases 28-30, 45, 69): for every schema of the committed corpus
tests/data/grammar/schemas.json and several sampling seeds, the real model's output must be
complete (done_reason "stop", never cut by the token limit), parse, and validate against the
schema with the `jsonschema` package (formats checked by the draft's FORMAT_CHECKER). Requests
run four at a time so the server batches them, each on its own client: a pooled keep-alive
connection can be closed by the server while idle, which is not what this test is about."""
import json
import os
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import ollama
import openai
import pytest

from conftest import MODEL, http, jbody

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = json.load(open(os.path.join(HERE, "..", "data", "grammar", "schemas.json"), encoding="utf-8"))
SEEDS = [11, 12]
NUM_PREDICT = 320  # far above what the bounded schemas need: a cut output is a failure


def prompt_for(case):
    return f"{case['prompt']} Answer in JSON following this schema: {json.dumps(case['schema'])}"


def check(case, seed, text, done_reason, where):
    schema = case["schema"]
    assert done_reason == "stop", f"{case['name']} seed {seed} ({where}): cut ({done_reason}): {text!r}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise AssertionError(f"{case['name']} seed {seed} ({where}): not JSON ({e}): {text!r}")
    try:
        cls = jsonschema.validators.validator_for(schema)  # draft 2020-12 unless $schema says otherwise
        cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)
    except jsonschema.ValidationError as e:
        raise AssertionError(f"{case['name']} seed {seed} ({where}): invalid: {e.message}: {text!r}")


def run_native(url, case, seed, i):
    client = ollama.Client(host=url)
    opts = {"temperature": 1.0, "seed": seed, "num_predict": NUM_PREDICT}
    # Alternate the route and streaming so every path of the server is covered.
    if i % 2 == 0:
        if (i // 2) % 2 == 0:
            r = client.generate(model=MODEL, prompt=prompt_for(case), format=case["schema"], options=opts)
            return r.response, r.done_reason, "generate"
        text, reason = "", None
        for part in client.generate(model=MODEL, prompt=prompt_for(case), format=case["schema"], options=opts, stream=True):
            text += part.response
            reason = part.done_reason or reason
        return text, reason, "generate stream"
    msgs = [{"role": "user", "content": prompt_for(case)}]
    if (i // 2) % 2 == 0:
        r = client.chat(model=MODEL, messages=msgs, format=case["schema"], options=opts)
        return r.message.content, r.done_reason, "chat"
    text, reason = "", None
    for part in client.chat(model=MODEL, messages=msgs, format=case["schema"], options=opts, stream=True):
        text += part.message.content
        reason = part.done_reason or reason
    return text, reason, "chat stream"


@pytest.mark.parametrize("seed", SEEDS)
def test_corpus_outputs_validate(url, seed):
    assert len(CORPUS) >= 50
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda ic: (ic[1], run_native(url, ic[1], seed, ic[0] + seed)), enumerate(CORPUS)))
    failures = []
    for case, (text, reason, where) in results:
        try:
            check(case, seed, text, reason, where)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_openai_json_schema_and_json_object(url, oai):
    cases = CORPUS[::6]
    def one(case):
        r = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt_for(case)}], temperature=1.0, seed=5,
            max_tokens=NUM_PREDICT,
            response_format={"type": "json_schema", "json_schema": {"name": case["name"], "schema": case["schema"], "strict": True}})
        c = r.choices[0]
        return case, c.message.content, "stop" if c.finish_reason == "stop" else c.finish_reason
    with ThreadPoolExecutor(4) as pool:
        for case, text, reason in pool.map(one, cases):
            check(case, 5, text, reason, "openai json_schema")
    r = oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Describe a cat in JSON."}],
                                    temperature=0.7, seed=3, max_tokens=128, response_format={"type": "json_object"})
    check_json_object(r.choices[0].message.content, r.choices[0].finish_reason)


def is_object_prefix(text):
    """Whether `text` starts a JSON object: some short completion (finish a literal, number, key
    or string, then close the open brackets) parses as an object."""
    for fix in ("", "0", '"', ':0', '":0', "ue", "rue", "e", "alse", "lse", "se", "ull", "ll", "l", "\\n\""):
        t, stack, in_str, esc = text + fix, [], False, False
        for ch in t:
            if in_str:
                esc, in_str = (False, in_str) if esc else (ch == "\\", ch != '"')
            elif ch == '"':
                in_str = True
            elif ch in "{[":
                stack.append("}" if ch == "{" else "]")
            elif ch in "}]" and stack:
                stack.pop()
        if in_str:
            continue
        t = t.rstrip().rstrip(",")
        try:
            if isinstance(json.loads(t + "".join(reversed(stack))), dict):
                return True
        except json.JSONDecodeError:
            pass
    return False


def check_json_object(text, done_reason):
    # `format: "json"` does not bound the length: a cut output must still be a valid start (§13 case 28).
    if done_reason == "stop":
        assert isinstance(json.loads(text), dict), text
    else:
        assert done_reason == "length" and is_object_prefix(text), (done_reason, text)


def test_object_prefix_check_can_fail():
    assert is_object_prefix('{"a": [1, tr') and is_object_prefix('{"a": "x') and is_object_prefix('{"a"')
    assert not is_object_prefix('{"a": ]') and not is_object_prefix('[1') and not is_object_prefix('{"a" 1')


def test_format_json_is_an_object(client):  # 28
    for seed in (1, 2):
        r = client.generate(model=MODEL, prompt="List the colors of the French flag in JSON.", format="json",
                            options={"temperature": 0.7, "seed": seed, "num_predict": 128})
        check_json_object(r.response, r.done_reason)


def test_spec_case_age(client):  # 29
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    r = client.generate(model=MODEL, prompt="How old is a ten year old? Reply in JSON.", format=schema,
                        options={"temperature": 0, "num_predict": 64})
    assert isinstance(json.loads(r.response)["age"], int)


@pytest.mark.parametrize("schema,needle", [
    ({"type": "object", "properties": {"a": {"type": 12}}}, "type at #/properties/a must be a string"),
    ({"type": "object", "properties": {"a": {"type": "string", "not": {}}}}, 'unsupported schema keyword "not"'),
    ({"$ref": "#/$defs/nope"}, 'unknown definition "#/$defs/nope"'),
    ({"type": "string", "pattern": "(ab"}, "invalid pattern"),
])
def test_bad_schema_is_400_naming_the_problem(url, client, oai, schema, needle):  # 30
    for route, body in (("/api/generate", {"prompt": "hi"}), ("/api/chat", {"messages": [{"role": "user", "content": "hi"}]})):
        st, _, b = http(url, "POST", route, {"model": MODEL, "format": schema, "stream": False, **body})
        assert st == 400 and needle in jbody(b)["error"], (route, st, b)
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model=MODEL, prompt="hi", format=schema)
    assert e.value.status_code == 400 and needle in e.value.error
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                    response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert needle in str(e.value)
