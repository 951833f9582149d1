"""Per-request KV cache types (issue 4): options kv_cache_type / _k / _v reload an idle model
with the asked cache, whose size /api/ps reports; bad names are a 400 naming the problem."""
import pytest

from conftest import MODEL, OPTS, http, jbody


def loaded_size(client):
    m = [x for x in client.ps().models if x.model == MODEL + ":latest"]
    assert len(m) == 1
    return m[0].size


def run(client, **cache):
    r = client.generate(model=MODEL, prompt="The capital of France is",
                        options={"num_predict": 4, "num_ctx": 2048, **OPTS, **cache})
    assert r.done and r.eval_count >= 1
    return loaded_size(client), r.response


def test_cache_types_change_the_loaded_size(client):
    f16, text_f16 = run(client, kv_cache_type="f16")
    q8, _ = run(client, kv_cache_type="q8_0")
    q4, _ = run(client, kv_cache_type="q4_0")
    mixed, _ = run(client, kv_cache_type_k="q8_0", kv_cache_type_v="q4_0")
    # Per cached element: f16 2 bytes, q8_0 34/32, q4_0 18/32; the weights are the same file.
    kv_f16 = f16 - q8
    assert kv_f16 > 0 and q8 > q4
    assert abs((f16 - q4) / (f16 - q8) - (2 - 18 / 32) / (2 - 34 / 32)) < 0.01
    assert q4 < mixed < q8
    again, text_again = run(client, kv_cache_type="f16")
    assert again == f16 and text_again == text_f16


@pytest.mark.parametrize("opts", [{"kv_cache_type": "q3_k"}, {"kv_cache_type_v": 8}])
def test_bad_cache_type_is_400(url, opts):
    st, _, b = http(url, "POST", "/api/generate", {"model": MODEL, "prompt": "hi", "options": opts})
    assert st == 400 and "kv_cache_type" in jbody(b)["error"]
