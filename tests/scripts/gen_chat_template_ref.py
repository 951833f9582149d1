#!/usr/bin/env python3
"""Reference renders of real chat templates for tests/test_chat_template.cpp.

Renders every template in tests/data/chat/templates/ over a set of conversations with Python
jinja2, configured the way Hugging Face's apply_chat_template configures it (sandboxed
environment, trim_blocks, lstrip_blocks, loop controls, raise_exception, strftime_now, a tojson
that is json.dumps(ensure_ascii=False)). strftime_now is pinned to a fixed instant so the output
is reproducible. The Jinja context is built the way osprey::chat::render_chat builds it from
Ollama-style messages (see engine/chat/prompt.cpp), and both forms are stored so the C++ test
can check the engine alone and the whole render_chat path.

Template provenance (text stored verbatim in tests/data/chat/templates/):
  * meta-llama-Llama-3.1-8B-Instruct, meta-llama-Llama-3.2-3B-Instruct, Qwen-Qwen2.5-7B-Instruct,
    Qwen-Qwen3-0.6B, mistralai-Mistral-Nemo-Instruct-2407, microsoft-Phi-3.5-mini-instruct:
    llama.cpp models/templates/*.jinja, as vendored in the llama-cpp-python 0.3.36 sdist.
  * HuggingFaceTB-SmolLM2-135M-Instruct, Qwen-Qwen2.5-Coder-0.5B-Instruct: the GGUFs'
    tokenizer.chat_template (SmolLM2-135M-Instruct.Q4_1.gguf, qwen2.5-coder-0.5b-instruct.gguf).
  * google-gemma-3-it: Gemma 3 instruct template (google/gemma-3-*-it tokenizer_config.json);
    the gemma-3-270m GGUF in the cache carries no template.
  * The "extra coverage" entries below: llama.cpp models/templates/*.jinja, same sdist.

Cases with tools or thinking are also rendered by transformers' apply_chat_template path
(transformers.utils.chat_template_utils.render_jinja_template, transformers 5.23.0, no torch
needed) and stored as "transformers"; the C++ test checks render_chat against that too.

Usage: python3 tests/scripts/gen_chat_template_ref.py   (rewrites tests/data/chat/jinja_ref.json)
"""
import json
import os
from datetime import datetime, timezone

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "chat")
NOW = 1721995200  # 2024-07-26T12:00:00Z (noon: the same date in any time zone); the C++ test pins it too

TEMPLATES = {
    # name: (bos, eos)
    "meta-llama-Llama-3.1-8B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "Qwen-Qwen2.5-7B-Instruct": ("", "<|im_end|>"),
    "Qwen-Qwen2.5-Coder-0.5B-Instruct": ("", "<|im_end|>"),
    "Qwen-Qwen3-0.6B": ("", "<|im_end|>"),
    "google-gemma-3-it": ("<bos>", "<eos>"),
    "HuggingFaceTB-SmolLM2-135M-Instruct": ("", "<|im_end|>"),
    "mistralai-Mistral-Nemo-Instruct-2407": ("<s>", "</s>"),
    "microsoft-Phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    # Extra coverage of the engine (more Jinja features in the wild): llama.cpp templates, generic
    # bos/eos texts.
    "meta-llama-Llama-3.3-70B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-ai-DeepSeek-V3.1": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "Qwen-QwQ-32B": ("", "<|im_end|>"),
    "Qwen3-Coder": ("", "<|im_end|>"),
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "HuggingFaceTB-SmolLM3-3B": ("", "<|im_end|>"),
    "ibm-granite-granite-3.3-2B-Instruct": ("", "<|end_of_text|>"),
    "Mistral-Small-3.2-24B-Instruct-2506": ("<s>", "</s>"),
    "openai-gpt-oss-120b": ("<|startoftext|>", "<|return|>"),
    "google-gemma-2-2b-it": ("<bos>", "<eos>"),
    "meetkai-functionary-medium-v3.2": ("<|begin_of_text|>", "<|eot_id|>"),
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    "moonshotai-Kimi-K2": ("[BOS]", "[EOS]"),
    # Tool-calling families for the reply parsers (tests/test_reply_parse.cpp), same sdist.
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "unsloth-mistral-Devstral-Small-2507": ("<s>", "</s>"),
}

# Key order is Ollama's struct order (type, function{name, description, parameters{type,
# required, properties}}); property maps sorted, as they arrive through nlohmann::json.
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city <name> & country",
        "parameters": {"type": "object", "required": ["location"], "properties": {
            "location": {"type": "string", "description": "City, e.g. Paris"},
            "unit": {"type": "string", "description": "Unit", "enum": ["celsius", "fahrenheit"]},
        }}}},
    {"type": "function", "function": {
        "name": "add",
        "description": "Add two numbers",
        "parameters": {"type": "object", "required": ["a", "b"], "properties": {
            "a": {"type": "integer"}, "b": {"type": "number"}}}}},
]

SYS = {"role": "system", "content": "You are a terse assistant."}
U1 = {"role": "user", "content": "Hello! What's 2+2?"}
A1 = {"role": "assistant", "content": "4."}
U2 = {"role": "user", "content": "And the capital of France?"}
UNI = {"role": "user", "content": "  Héllo ✓ <b>\"quoted\"</b> & 'single'\n\nnew\tline  "}
CALL = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "abc123def", "function": {"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}}]}
RESULT = {"role": "tool", "content": "{\"temperature\": 21}", "tool_name": "get_weather", "tool_call_id": "abc123def"}
U_WEATHER = {"role": "user", "content": "What's the weather in Paris?"}
A_THINK = {"role": "assistant", "content": "4.", "thinking": "2+2 is 4."}
CALL2 = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "abc123def", "function": {"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}},
    {"id": "xyz789uvw", "function": {"name": "add", "arguments": {"a": 2, "b": 3.5}}}]}
RESULT2 = {"role": "tool", "content": "5.5", "tool_name": "add", "tool_call_id": "xyz789uvw"}

CASES = [
    # name, messages, tools, think, add_generation_prompt
    ("sys_user", [SYS, U1], None, None, True),
    ("user_only", [U1], None, None, True),
    ("multi_turn", [SYS, U1, A1, U2], None, None, True),
    ("multi_no_system", [U1, A1, U2], None, None, True),
    ("no_gen_prompt", [SYS, U1, A1], None, None, False),
    ("unicode_escapes", [UNI], None, None, True),
    ("tools_defined", [SYS, U_WEATHER], TOOLS, None, True),
    ("tool_roundtrip", [U_WEATHER, CALL, RESULT], TOOLS, None, True),
    ("tool_roundtrip_answer", [SYS, U_WEATHER, CALL, RESULT, {"role": "assistant", "content": "21 C."}, U2], TOOLS, None, True),
    ("tool_parallel_roundtrip", [SYS, U_WEATHER, CALL2, RESULT, RESULT2], TOOLS, None, True),
    ("tools_think", [U_WEATHER], TOOLS, True, True),
    ("think_on", [U1, A_THINK, U2], None, True, True),
    ("think_off", [U1, A_THINK, U2], None, False, True),
    ("think_last_assistant", [U1, A_THINK], None, True, False),
]


def jinja_message(m):
    """Ollama message -> the dict render_chat hands the Jinja template."""
    out = {"role": m["role"], "content": m.get("content", "")}
    if m.get("thinking"):  # under both names transformers gives it (gpt-oss reads `thinking`)
        out["reasoning_content"] = m["thinking"]
        out["thinking"] = m["thinking"]
    if m.get("tool_calls"):
        calls = []
        for c in m["tool_calls"]:
            call = {"type": "function"}
            if c.get("id"):
                call["id"] = c["id"]
            call["function"] = {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            calls.append(call)
        out["tool_calls"] = calls
    if m.get("tool_name"):
        out["name"] = m["tool_name"]
    if m.get("tool_call_id"):
        out["tool_call_id"] = m["tool_call_id"]
    return out


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.fromtimestamp(NOW, timezone.utc).strftime(fmt)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def transformers_render(src, ctx):
    """The same conversation through transformers' own apply_chat_template path
    (render_jinja_template, transformers >= 4.5x), clock pinned like ours; None if unavailable."""
    try:
        from transformers.utils import chat_template_utils as ctu
    except ImportError:
        return None

    class PinnedClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(NOW, tz or timezone.utc).replace(tzinfo=tz)

    ctu.datetime = PinnedClock
    kwargs = {k: v for k, v in ctx.items() if k not in ("messages", "tools", "add_generation_prompt")}
    try:
        rendered, _ = ctu.render_jinja_template(conversations=[ctx["messages"]], tools=ctx.get("tools"),
                                                chat_template=src, add_generation_prompt=ctx["add_generation_prompt"],
                                                **kwargs)
    except Exception as e:  # transformers passes tools=None, which some templates cannot iterate
        print(f"note: transformers cannot render this case: {e}")
        return None
    return rendered[0]


def main():
    env = environment()
    n_tf = 0
    out = {"now": NOW, "cases": []}
    for name, (bos, eos) in TEMPLATES.items():
        src = open(os.path.join(ROOT, "templates", name + ".jinja"), encoding="utf-8").read()
        tmpl = env.from_string(src)
        for case, msgs, tools, think, agp in CASES:
            ctx = {"messages": [jinja_message(m) for m in msgs]}
            if tools:
                ctx["tools"] = tools
            ctx["add_generation_prompt"] = agp
            ctx["bos_token"] = bos
            ctx["eos_token"] = eos
            if think is not None:
                ctx["enable_thinking"] = think
            entry = {"template": name, "case": case, "bos_token": bos, "eos_token": eos,
                     "messages": msgs, "tools": tools, "think": think, "add_generation_prompt": agp, "context": ctx}
            try:
                entry["expected"] = tmpl.render(**ctx)
                # Renders with tools or thinking are also checked against transformers itself.
                if tools or think is not None:
                    tf = transformers_render(src, ctx)
                    if tf is not None:
                        entry["transformers"] = tf
                        n_tf += 1
                        if tf != entry["expected"]:
                            print(f"note: {name}/{case}: transformers differs from jinja2")
            except jinja2.exceptions.TemplateError as e:  # raise_exception and friends
                entry["error"] = str(e)
            except (TypeError, ValueError) as e:  # the template itself fails on this input
                entry["error"] = str(e)
                entry["error_kind"] = "python"
            out["cases"].append(entry)
    path = os.path.join(ROOT, "jinja_ref.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum(1 for c in out["cases"] if "error" in c)
    print(f"wrote {path}: {len(out['cases'])} cases ({n_err} expected errors, {n_tf} also rendered by transformers)")


if __name__ == "__main__":
    main()
