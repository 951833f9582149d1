#!/usr/bin/env python3
"""Reference token ids for tests/test_tokenizer.cpp, from llama.cpp and from HF transformers.

For each model in ~/.cache/osprey (or $OSPREY_CACHE) this writes tests/data/tokenizer/<key>.json:

  corpus: hard strings (whitespace runs, digits, scripts with combining marks, emoji sequences,
          code, contractions, special-token text, invalid UTF-8, a long paragraph), each with
            llama_cpp[mode] for the four modes "as{0,1}_ps{0,1}" (add_special, parse_special),
            detok[mode]  llama.cpp's pieces concatenated (special pieces rendered when ps1),
            hf[mode]     HF's ids where HF could encode the string ("as*_ps1" always; "as*_ps0"
                         via split_special_tokens), else absent,
            agree        whether HF and llama.cpp gave the same ids in every mode HF covered.
  fuzz:   seeded random strings over an alphabet of troublemakers, llama.cpp ids only.
  pieces: llama.cpp's token_to_piece for a sample of ids (plain and rendered).

and tests/data/tokenizer/qwen25_variants.json: the Qwen2.5 vocabulary re-labelled with other
tokenizer.ggml.pre values (llama-bpe, gpt-2, default) so those pre-tokenizers are checked against
llama.cpp too, with digit tokens appended so digit grouping shows in the ids: tokens "00".."99"
then "000".."999" (type normal), merges "a b" for each pair then "ab c" for each triple, appended
in that order. The C++ test builds the same file from the real one (keep the two in step).

The C++ test requires our ids to equal llama.cpp's everywhere (llama.cpp is what the engine
must interoperate with); HF disagreements are recorded here and summarised on stdout.

Needs: llama-cpp-python (builds llama.cpp from source), transformers + tokenizers + gguf +
sentencepiece + protobuf. transformers' GGUF metadata reader imports torch at module level only
for tensor dtypes; tokenizers never touch it, so when torch is absent a stub module stands in.

Usage: python3 tests/scripts/gen_tokenizer_ref.py [--no-hf] [--models smollm2,qwen25,gemma3]
"""
import argparse
import ctypes
import json
import os
import random
import sys
import types
from pathlib import Path

MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen25": "qwen2.5-coder-0.5b-instruct.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
MODES = [(a, p) for a in (0, 1) for p in (0, 1)]

LONG = (
    "The quick brown fox jumps over the lazy dog. In 1969, Apollo 11 landed on the Moon; "
    "Neil Armstrong's words — \"That's one small step for [a] man\" — were heard by ~600 million "
    "people. Today's CPUs run at 3.5 GHz, with 64-128 KB of L1 cache per core!\n\n"
    "  Indented paragraph:\tTabs, 'quotes', \"double quotes\", and (parentheses) [brackets] "
    "{braces}. Emails like first.last+tag@example.co.uk and URLs such as "
    "https://en.wikipedia.org/wiki/Tokenization_(lexical_analysis)?x=1&y=2#History appear.\n"
    "Numbers: 0, 7, 42, 314, 2718, 99999, 1234567, 3.14159265358979, -273.15, 6.022e23, 1/3.\n"
    "Mixed scripts: naïve café, Straße, Ελλάδα, Москва, 東京都, 서울, القاهرة, मुंबई. "
    "Emoji: 😀🎉👩🏽‍💻🇫🇷. End of paragraph...   \n"
)

PY_CODE = (
    "def fib(n: int) -> int:\n"
    "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    "    if n < 2:\n"
    "        return n\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n - 1):\n"
    "        a, b = b, a + b  # tuple swap\n"
    "    return b\n\n\n"
    "print(f\"{fib(10)=}\")\n"
)
CPP_CODE = (
    "#include <vector>\n"
    "template <typename T>\n"
    "T sum(const std::vector<T>& v) {\n"
    "\tT s{};\n"
    "\tfor (auto& x : v) s += x;  // accumulate\n"
    "\treturn s;\n"
    "}\n"
    "int main() { return sum<int>({1, 2, 3}) == 6 ? 0 : 1; }\n"
)

# (name, text) — text is str, or bytes for input that is not valid UTF-8.
CORPUS = [
    ("empty", ""),
    ("space", " "),
    ("two_spaces", "  "),
    ("tab", "\t"),
    ("newline", "\n"),
    ("three_newlines", "\n\n\n"),
    ("ws_mix", "   \n\n  \t\t \n"),
    ("ws_crlf_mix", " \t \n \r\n "),
    ("crlf_pairs", "\r\n\r\n"),
    ("many_spaces", "a  b   c    d     e" + " " * 40 + "f"),
    ("hello", "Hello world"),
    ("lead_space", " Hello world"),
    ("trail_space", "Hello world "),
    ("lead_trail", "   leading and trailing   "),
    ("digits", "1234567890 3.14159 1,000,000"),
    ("digit_groups", "0 00 000 0000 00000 12345678901234567890"),
    ("digits_text", "The year 2024 had 366 days; pi~3.14 and 10x faster, v1.2.3-rc4"),
    ("contractions", "I'm don't YOU'LL we'VE they'Re she'd it's Ain'T"),
    ("quotes", "''' \"\"\" ''s 'S 'LL' ' s"),
    ("mixed_case", "HeLLo WoRLD MiXeD CaSe camelCaseWord snake_case_word SCREAMING_CASE"),
    ("chinese", "你好，世界！这是一个测试。"),
    ("japanese", "日本語のテキストとカタカナ、ひらがな。"),
    ("arabic", "مرحبا بالعالم، كيف حالك؟ ١٢٣"),
    ("hindi", "नमस्ते दुनिया, क्या हाल है? क्षत्रिय"),
    ("korean", "안녕하세요 세계 한국어"),
    ("cyrillic_greek", "Привет, мир! Ελληνικά γράμματα"),
    ("emoji", "👍 👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇸🇯🇵 👋🏽 🤷‍♂️"),
    ("accents", "café naïve résumé Ångström Zürich"),
    ("combining", "e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0335\u0321"),
    ("python", PY_CODE),
    ("cpp", CPP_CODE),
    ("indent", "      indented\n        more\n\t\tdef\n\t\t\treturn"),
    ("paragraphs", "a\n\nb\n\n\nc\n \n"),
    ("url", "https://example.com/path/to?query=1&x=y#frag user@example.org"),
    ("chatml", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"),
    ("gemma_turn", "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"),
    ("bos_eos_text", "<bos>hello<eos>"),
    ("endoftext", "<|endoftext|>"),
    ("specials_adjacent", "<|im_start|><|im_end|><|im_start|>  <start_of_turn><end_of_turn>"),
    ("special_spaces", "  <|im_start|>  x  <|im_end|>  "),
    ("tool_call", "<tool_call>{\"name\": \"f\", \"args\": [1, 2]}</tool_call>"),
    ("html", "<table><tr><td>cell</td></tr></table> <h1>Title</h1><b>bold</b>"),
    ("unicode_spaces", "\u00a0non-breaking\u2003em\u3000ideographic\u2028line"),
    ("zero_width", "\u200bzero\u200dwidth\ufeffbom\u00adsoft"),
    ("symbols", "$100 + 200 = 300; a^b ~c |d| `code` <=> #!@%&*"),
    ("punct_runs", "!!!???...,,,;;; --- ___ ((()))"),
    ("number_forms", "ǅ ſ K Ⅻ ① ٣ ²³ ½ ⅞"),
    ("math", "∀x∈ℝ: x²≥0, ∑ᵢ aᵢ = ∞"),
    ("controls", "a\x00b\x01c\x7fd\x1b[0m"),
    # Letters new in Unicode 15.0/15.1 (CJK ext. H and I, Kawi, Nag Mundari): "'ll" after a letter
    # is a contraction piece, after a non-letter it is not, so this pins the Unicode version.
    ("unicode15_letters", "\U00031350'll \U00011F04'll \U0001E4D0'll \U0002EBF0'ss"),
    ("byte_token_text", "<0x41> <0xFF> ▁▁ ▁hello"),
    ("repeated", "a" * 64 + " " + "ab" * 20),
    ("long", LONG),
    ("invalid_ff", b"\xff\xfe\xfd"),
    ("invalid_truncated", b"abc\xe4\xb8"),
    ("invalid_cont", b"\xc3(x\x80y"),
    ("surrogate", b"\xed\xa0\x80z"),
    ("overlong", b"\xc0\x80\xe0\x80\xaf"),
    ("invalid_mixed", b"ok \xf0\x9f\x98 \xf0\x9f\x98\x80 end\xc2"),
]
# Not in the corpus: a 4-byte sequence beyond U+10FFFF (e.g. F7 BF BF BF). llama.cpp's BPE path
# throws std::invalid_argument from unicode_cpt_to_utf8 and aborts the process; we encode it as
# U+FFFD instead (covered by a plain C++ test, not by reference data).

FUZZ_ALPHABET = (list(" \t\n\r'sStTmlLdDrRevV0123456789aZ.,!?-_()[]{}<>|$+=^~`\"#@/\\")
                 + ["é", "你", "٣", "①", "\u0301", "\u00a0", "\u2003", "\u3000", "\U0001F600", "\u200d",
                    "ß", "Ⅻ", "\x85", "\ufffd", "▁", "한", "क्", "  ", "\n\n", "\t\t",
                    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>",
                    "<eos>", "<bos>", "<b>", "</s>", "<s>", "<unk>", "[multimodal]", "<tool_call>"])


def fuzz_strings(seed, count):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        out.append("".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(1, 40))))
    for _ in range(count // 10):
        # Lead bytes F4..F7 can spell codepoints past U+10FFFF, which make llama.cpp abort.
        out.append(bytes(b if not 0xF4 <= b <= 0xF7 else 0xF0
                         for b in (rng.randint(0, 255) for _ in range(rng.randint(1, 16)))))
    return out


VARIANT_PRES = ["llama-bpe", "gpt-2", "default"]
DIGITS = "0123456789"
DIGIT_PAIRS = [a + b for a in DIGITS for b in DIGITS]
DIGIT_TRIPLES = [p + c for p in DIGIT_PAIRS for c in DIGITS]
VARIANT_EXTRA = {
    "tokenizer.ggml.tokens": DIGIT_PAIRS + DIGIT_TRIPLES,
    "tokenizer.ggml.token_type": [1] * (len(DIGIT_PAIRS) + len(DIGIT_TRIPLES)),
    "tokenizer.ggml.merges": [a + " " + b for a in DIGITS for b in DIGITS] + [p + " " + c for p in DIGIT_PAIRS for c in DIGITS],
}


def write_variant(src, pre, out_path):
    """Copy src's metadata (no tensors) with tokenizer.ggml.pre = pre and the digit tokens added."""
    import gguf
    r = gguf.GGUFReader(str(src))
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    w = gguf.GGUFWriter(str(out_path), arch=arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            if f.types[1] == gguf.GGUFValueType.STRING:
                vals = [bytes(f.parts[i]).decode("utf-8", errors="surrogateescape") for i in f.data]
            else:
                vals = [f.parts[i][0].item() for i in f.data]
            w.add_array(k, vals + VARIANT_EXTRA.get(k, []))
        elif k == "tokenizer.ggml.pre":
            w.add_string(k, pre)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_string(k, bytes(f.parts[f.data[0]]).decode("utf-8", errors="surrogateescape"))
        else:
            w.add_key_value(k, f.parts[f.data[0]][0].item(), vt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gen_variants(llama_cpp, cache, out_dir):
    import tempfile
    doc = {"base": MODELS["qwen25"], "generator": "tests/scripts/gen_tokenizer_ref.py",
           "reference": "llama-cpp-python " + llama_cpp.__version__, "variants": {}}
    texts = [t for _, t in CORPUS] + fuzz_strings(99, 150)
    with tempfile.TemporaryDirectory() as tmp:
        for pre in VARIANT_PRES:
            path = Path(tmp) / f"variant_{pre}.gguf"
            write_variant(cache / MODELS["qwen25"], pre, path)
            llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
            cases = []
            for t in texts:
                b = as_bytes(t)
                cases.append({"hex": b.hex(), "as0_ps0": llm.tokenize(b, add_bos=False, special=False),
                              "as1_ps1": llm.tokenize(b, add_bos=True, special=True)})
            doc["variants"][pre] = {"n_vocab": llm.n_vocab(), "cases": cases}
            del llm
    path = out_dir / "qwen25_variants.json"
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"variants {VARIANT_PRES}: {len(texts)} strings each -> {path}")


def as_bytes(t):
    return t if isinstance(t, bytes) else t.encode("utf-8")


def text_entry(t):
    b = as_bytes(t)
    e = {"hex": b.hex()}
    if isinstance(t, str):
        e["text"] = t
    return e


def load_hf(cache, fname):
    from transformers import AutoTokenizer
    try:
        import torch  # noqa: F401
    except ImportError:
        class _Stub(types.ModuleType):
            def __getattr__(self, name):
                if name.startswith("__"):
                    raise AttributeError(name)
                return type(name, (), {})
        sys.modules["torch"] = _Stub("torch")
        import transformers.modeling_gguf_pytorch_utils as mg
        mg.is_torch_available = lambda: True
    return AutoTokenizer.from_pretrained(str(cache), gguf_file=fname)


def hf_encode(tok, text, add_special, parse_special):
    kw = {"add_special_tokens": bool(add_special)}
    if not parse_special:
        kw["split_special_tokens"] = True
    return list(tok(text, **kw)["input_ids"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--fuzz", type=int, default=200)
    ap.add_argument("--no-variants", action="store_true")
    args = ap.parse_args()

    import llama_cpp
    cache = Path(os.environ.get("OSPREY_CACHE", Path.home() / ".cache" / "osprey"))
    out_dir = Path(__file__).resolve().parent.parent / "data" / "tokenizer"
    out_dir.mkdir(parents=True, exist_ok=True)

    for key in args.models.split(","):
        fname = MODELS[key]
        llm = llama_cpp.Llama(str(cache / fname), vocab_only=True, verbose=False)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        buf = (ctypes.c_char * 4096)()

        def piece(tid, special):
            n = llama_cpp.llama_token_to_piece(vocab, tid, buf, len(buf), 0, special)
            return bytes(buf[:n])

        def lc_encode(b, a, p):
            return llm.tokenize(b, add_bos=bool(a), special=bool(p))

        hf = None
        hf_note = None
        if not args.no_hf:
            try:
                hf = load_hf(cache, fname)
            except Exception as e:  # recorded, not fatal: llama.cpp is the reference the test uses
                hf_note = f"transformers could not load this GGUF tokenizer: {type(e).__name__}: {e}"

        corpus = []
        disagree = []
        for name, t in CORPUS:
            b = as_bytes(t)
            e = {"name": name, **text_entry(t), "llama_cpp": {}, "detok": {}}
            for a, p in MODES:
                mode = f"as{a}_ps{p}"
                ids = lc_encode(b, a, p)
                e["llama_cpp"][mode] = ids
                e["detok"][mode] = b"".join(piece(i, bool(p)) for i in ids).hex()
            if hf is not None and isinstance(t, str):
                e["hf"] = {}
                for a, p in MODES:
                    try:
                        e["hf"][f"as{a}_ps{p}"] = hf_encode(hf, t, a, p)
                    except Exception as ex:
                        e.setdefault("hf_error", str(ex))
                e["agree"] = all(e["hf"][m] == e["llama_cpp"][m] for m in e["hf"])
                if not e["agree"]:
                    disagree.append(name + ":" + ",".join(m for m in e["hf"] if e["hf"][m] != e["llama_cpp"][m]))
            corpus.append(e)

        fuzz = []
        for t in fuzz_strings(1234, args.fuzz):
            b = as_bytes(t)
            fuzz.append({"hex": b.hex(), "as0_ps0": lc_encode(b, 0, 0), "as1_ps1": lc_encode(b, 1, 1)})

        n_vocab = llm.n_vocab()
        sample = sorted(set(list(range(min(n_vocab, 400))) + list(range(0, n_vocab, 97)) + [n_vocab - 1]))
        pieces = {str(i): [piece(i, False).hex(), piece(i, True).hex()] for i in sample}

        doc = {
            "model": fname,
            "generator": "tests/scripts/gen_tokenizer_ref.py",
            "references": {
                "llama_cpp": "llama-cpp-python " + llama_cpp.__version__ + " (the test's reference)",
                "hf": hf_note or ("transformers " + __import__("transformers").__version__ +
                                  " AutoTokenizer(gguf_file=...)") if not args.no_hf else "not run",
            },
            "bos": llm.token_bos(), "eos": llm.token_eos(), "n_vocab": n_vocab,
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
            "eog": [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)],
            "hf_disagreements": disagree,
            "corpus": corpus,
            "fuzz": fuzz,
            "pieces": pieces,
        }
        path = out_dir / f"{key}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        print(f"{key}: {len(corpus)} corpus strings, {len(fuzz)} fuzz strings, {len(pieces)} pieces -> {path}")
        if args.no_hf:
            hf_summary = "not run"
        elif hf_note:
            hf_summary = hf_note
        else:
            hf_summary = "disagrees on " + str(disagree) if disagree else "agrees everywhere"
        print(f"  HF: {hf_summary}")

    if not args.no_variants:
        gen_variants(llama_cpp, cache, out_dir)


if __name__ == "__main__":
    main()
