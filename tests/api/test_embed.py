"""§13 cases 14, 37, 48-54, 73: embeddings with the official clients. The embedding model is
all-MiniLM-L6-v2, converted from its checkpoint folder by `osprey convert` and uploaded like
`ollama create` does; SmolLM2 shows that a decoder model embeds too."""
import base64
import math
import os
import struct
import subprocess
import tempfile

import ollama
import pytest

from conftest import MODEL, http, jbody

EMB = "minilm"


@pytest.fixture(scope="module")
def embed_model(server, client):
    cache = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))
    ckpt = os.path.join(cache, "all-minilm-l6-v2")
    assert os.path.isdir(ckpt), f"{ckpt} missing (run tools/fetch_models.py)"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "minilm.gguf")
        subprocess.run([os.environ["OSPREY_BIN"], "convert", ckpt, "-o", out, "-q"], check=True)
        client.create(model=EMB, files={"model.gguf": client.create_blob(out)})
    return EMB


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def close(a, b, tol=1e-5):
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= tol


def test_embed_single(client, embed_model):  # 49
    r = client.embed(model=embed_model, input="hello")
    assert len(r.embeddings) == 1 and len(r.embeddings[0]) == 384
    assert abs(norm(r.embeddings[0]) - 1) < 1e-3
    assert r.prompt_eval_count == 3  # [CLS] hello [SEP]
    assert isinstance(r.total_duration, int) and r.total_duration > 0 and r.load_duration > 0


def test_embed_batch_order_and_similarity(client, embed_model):  # 50
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply."]
    r = client.embed(model=embed_model, input=texts)
    assert len(r.embeddings) == 3 and all(len(v) == 384 for v in r.embeddings)
    for i, t in enumerate(texts):  # each equals the same text embedded alone
        assert close(client.embed(model=embed_model, input=t).embeddings[0], r.embeddings[i])
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert dot(r.embeddings[0], r.embeddings[1]) > dot(r.embeddings[0], r.embeddings[2]) + 0.2


def test_embed_dimensions_and_empty(client, url, embed_model):  # 51
    full = client.embed(model=embed_model, input="hello").embeddings[0]
    r = client.embed(model=embed_model, input="hello", dimensions=8)
    v = r.embeddings[0]
    assert len(v) == 8 and abs(norm(v) - 1) < 1e-3
    n8 = norm(full[:8])
    assert close(v, [x / n8 for x in full[:8]], 1e-4)
    for body in ({"model": embed_model, "input": []}, {"model": embed_model}, {"model": embed_model, "input": ""}):
        st, _, b = http(url, "POST", "/api/embed", body)
        assert st == 200 and jbody(b)["embeddings"] == [] and jbody(b)["model"] == embed_model


def test_embed_truncate(url, embed_model):  # 52
    long = "word " * 600  # > 512 tokens, the model's context
    st, _, b = http(url, "POST", "/api/embed", {"model": embed_model, "input": long, "truncate": False})
    assert st == 400 and jbody(b) == {"error": "the input length exceeds the context length"}
    st, _, b = http(url, "POST", "/api/embed", {"model": embed_model, "input": long})
    assert st == 200 and jbody(b)["prompt_eval_count"] == 512
    st, _, b = http(url, "POST", "/api/embed", {"model": embed_model, "input": long, "options": {"num_ctx": 16}})
    assert st == 200 and jbody(b)["prompt_eval_count"] == 16


def test_embed_errors(url, embed_model):  # 53
    st, _, b = http(url, "POST", "/api/embed", {"model": embed_model, "input": 5})
    assert st == 400 and jbody(b) == {"error": "invalid input type"}
    st, _, b = http(url, "POST", "/api/embed", {"model": embed_model, "input": ["a", {"x": 1}]})
    assert st == 400 and jbody(b) == {"error": "invalid input type"}
    st, _, b = http(url, "POST", "/api/embed", {"model": "nope", "input": "a"})
    assert st == 404 and jbody(b) == {"error": 'model "nope" not found, try pulling it first'}
    st, _, b = http(url, "POST", "/api/embed", {"input": "a"})
    assert st == 400 and jbody(b) == {"error": "model is required"}
    st, _, b = http(url, "POST", "/api/embed", None)
    assert st == 400 and jbody(b) == {"error": "missing request body"}


def test_legacy_embeddings(client, url, embed_model):  # 54
    raw = client.embeddings(model=embed_model, prompt="hello").embedding
    assert len(raw) == 384 and abs(norm(raw) - 1) > 1e-3  # the raw pooled vector
    unit = client.embed(model=embed_model, input="hello").embeddings[0]
    assert close([x / norm(raw) for x in raw], unit, 1e-5)
    st, _, b = http(url, "POST", "/api/embeddings", {"model": embed_model, "prompt": ""})
    assert st == 200 and jbody(b) == {"embedding": []}
    st, _, b = http(url, "POST", "/api/embeddings", {"model": "nope", "prompt": "x"})
    assert st == 404


def test_embedding_model_capabilities(client, embed_model):  # 14, 37, 48
    assert client.show(embed_model).capabilities == ["embedding"]
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model=embed_model, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 400 and e.value.error == f'"{embed_model}" does not support chat'
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model=embed_model, prompt="hi")
    assert e.value.status_code == 400 and e.value.error == f'"{embed_model}" does not support generate'
    assert "embedding" not in client.show(MODEL).capabilities


def test_decoder_model_embeds(client):
    r = client.embed(model=MODEL, input=["hello", "world"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) == 576
    assert all(abs(norm(v) - 1) < 1e-3 for v in r.embeddings)


def test_openai_embeddings(oai, url, embed_model):  # 73
    r = oai.embeddings.create(model=embed_model, input="hello")  # the SDK asks for base64
    assert r.object == "list" and r.model == embed_model and len(r.data) == 1
    assert r.data[0].object == "embedding" and r.data[0].index == 0 and len(r.data[0].embedding) == 384
    assert r.usage.prompt_tokens == r.usage.total_tokens == 3
    st, _, b = http(url, "POST", "/v1/embeddings", {"model": embed_model, "input": "hello", "encoding_format": "float"})
    floats = jbody(b)["data"][0]["embedding"]
    assert st == 200 and close(floats, r.data[0].embedding, 1e-7)
    st, _, b = http(url, "POST", "/v1/embeddings", {"model": embed_model, "input": "hello", "encoding_format": "BASE64"})
    raw = base64.b64decode(jbody(b)["data"][0]["embedding"])
    assert len(raw) == 4 * 384 and close(list(struct.unpack("<384f", raw)), floats, 0)
    batch = oai.embeddings.create(model=embed_model, input=["hello", "world"], dimensions=16)
    assert [d.index for d in batch.data] == [0, 1] and len(batch.data[1].embedding) == 16
    tokens = oai.embeddings.create(model=embed_model, input=[[101, 7592, 102]])  # "hello" as token ids
    assert close(tokens.data[0].embedding, r.data[0].embedding, 1e-6)


def test_openai_embeddings_errors(url, embed_model):  # 73
    st, _, b = http(url, "POST", "/v1/embeddings", {"model": embed_model, "input": "x", "encoding_format": "hex"})
    assert st == 400
    assert jbody(b)["error"]["message"] == "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64']."
    for bad in ([], None, 5):
        st, _, b = http(url, "POST", "/v1/embeddings", {"model": embed_model, "input": bad})
        assert st == 400 and jbody(b)["error"]["message"] == "invalid input"
    st, _, b = http(url, "POST", "/v1/embeddings", {"model": embed_model, "input": [[101, 999999]]})
    assert st == 400
