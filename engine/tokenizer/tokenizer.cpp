#include "tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "tokenizer_impl.h"
#include "unicode.h"
#include "wordpiece.h"

namespace osprey {

using tok::Attr;

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

Attr attr_from_type(int64_t t) {
  switch (t) {
    case 1: return tok::kAttrNormal;
    case 2: return tok::kAttrUnknown;
    case 3: return tok::kAttrControl;
    case 4: return tok::kAttrUserDefined;
    case 5: return tok::kAttrUnused;
    case 6: return tok::kAttrByte;
    default: return tok::kAttrUndefined;
  }
}

// "<0xAB>" -> 0xAB, or -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string r;
  r.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    r.append(s, pos, hit - pos);
    r.append(to);
  }
  r.append(s, pos, std::string::npos);
  s.swap(r);
}

// Token texts that mark the end of a turn/generation in the wild; converters do not always
// record them in metadata, so they are recognised by text (as llama.cpp does).
const char* const kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};
// Texts that are control tokens even when the converter typed them as normal (end of turn,
// end of message, fill-in-the-middle markers).
const char* const kControlTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<end_of_utterance>", "<|eom_id|>",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>",
    "<|prefix|>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "\xE2\x96\x81<SUF>",
    "<|code_suffix|>", "<|suffix|>", "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>",
    "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>",
    "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"};
// Fill-in-the-middle tokens that also end generation.
const char* const kFimEogTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
                                    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                    "<reponame>", "<|file_sep|>"};

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  auto fail = [&](const std::string& msg) -> Status { return Status::error("tokenizer: " + msg); };

  auto model = f.get_string("tokenizer.ggml.model");
  if (!model.ok()) return fail(model.error());
  t.model = model.value();
  if (t.model == "gpt2") {
    t.kind = Impl::Kind::kBpe;
    auto pre = f.get_string("tokenizer.ggml.pre", "default");
    if (!pre.ok()) return fail(pre.error());
    t.pre = pre.value().empty() ? "default" : pre.value();
    t.pre_info = tok::find_pre_type(t.pre);
    if (!t.pre_info) return fail("unsupported pre-tokenizer type tokenizer.ggml.pre = '" + t.pre + "'");
  } else if (t.model == "llama") {
    t.kind = Impl::Kind::kSpm;
  } else if (t.model == "bert") {
    t.kind = Impl::Kind::kWpm;
  } else if (t.model.empty()) {
    return fail("tokenizer.ggml.model is missing");
  } else {
    return fail("unsupported tokenizer model tokenizer.ggml.model = '" + t.model +
                "' (supported: gpt2, llama, bert)");
  }

  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens.ok()) return fail(tokens.error());
  t.text = std::move(tokens.value());
  const size_t n = t.text.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) return fail("vocabulary size " + std::to_string(n) + " is unusable");

  t.score.assign(n, 0.0f);
  if (f.find("tokenizer.ggml.scores")) {
    auto scores = f.get_float_array("tokenizer.ggml.scores");
    if (!scores.ok()) return fail(scores.error());
    if (scores.value().size() < n) return fail("tokenizer.ggml.scores has fewer entries than tokens");
    for (size_t i = 0; i < n; ++i) t.score[i] = static_cast<float>(scores.value()[i]);
  }
  t.attr.assign(n, tok::kAttrNormal);
  if (f.find("tokenizer.ggml.token_type")) {
    auto types = f.get_int_array("tokenizer.ggml.token_type");
    if (!types.ok()) return fail(types.error());
    if (types.value().size() < n) return fail("tokenizer.ggml.token_type has fewer entries than tokens");
    for (size_t i = 0; i < n; ++i) t.attr[i] = attr_from_type(types.value()[i]);
  }

  t.text_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.text[i].empty()) t.text[i] = "[EMPTY_" + std::to_string(i) + "]";  // keep texts unique
    t.text_to_id[t.text[i]] = static_cast<int32_t>(i);  // a repeated text maps to its last id
  }

  if (t.kind == Impl::Kind::kBpe) {
    auto merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges.ok()) return fail(merges.error());
    const auto& m = merges.value();
    t.merges.rank.reserve(m.size());
    std::string key;
    for (size_t i = 0; i < m.size(); ++i) {
      // "left right"; the separator search starts at 1 so a left part may begin with a space.
      const size_t sp = m[i].size() > 1 ? m[i].find(' ', 1) : std::string::npos;
      std::string_view left, right;
      if (sp != std::string::npos) {
        left = std::string_view(m[i]).substr(0, sp);
        right = std::string_view(m[i]).substr(sp + 1);
      }
      const uint32_t ll = static_cast<uint32_t>(left.size());
      key.assign(reinterpret_cast<const char*>(&ll), sizeof(ll));
      key.append(left);
      key.append(right);
      t.merges.rank.emplace(key, static_cast<int32_t>(i));  // first rank of a repeated merge wins
    }
  }

  // Per-model defaults, then metadata. The defaults are llama.cpp's (including its odd id 11 for
  // byte-level BPE), so files that omit the keys still tokenize as they do there.
  const bool spm = t.kind == Impl::Kind::kSpm;
  const bool wpm = t.kind == Impl::Kind::kWpm;  // BERT: [CLS] text [SEP], [UNK] = 100
  int64_t bos = spm ? 1 : wpm ? 101 : 11, eos = spm ? 2 : wpm ? 102 : 11, unk = spm ? 0 : wpm ? 100 : -1;
  if (t.pre_info && t.pre_info->no_bos) bos = -1;
  if (bos >= static_cast<int64_t>(n)) bos = -1;
  if (eos >= static_cast<int64_t>(n)) eos = -1;
  if (unk >= static_cast<int64_t>(n)) unk = -1;
  t.add_bos = spm || wpm || (t.pre_info && t.pre_info->add_bos);
  t.add_eos = wpm;
  t.add_space_prefix = spm;

  auto read_id = [&](const char* key, int64_t* id) -> Status {
    if (!f.find(key)) return Status();
    auto v = f.get_int(key, -1);
    if (!v.ok()) return fail(v.error());
    if (v.value() < 0 || v.value() >= static_cast<int64_t>(n))
      return fail(std::string(key) + " = " + std::to_string(v.value()) + " is outside the vocabulary (" +
                  std::to_string(n) + " tokens)");
    *id = v.value();
    return Status();
  };
  int64_t eot = -1, eom = -1, other = -1;
  OSPREY_TRY(read_id("tokenizer.ggml.bos_token_id", &bos));
  OSPREY_TRY(read_id("tokenizer.ggml.eos_token_id", &eos));
  OSPREY_TRY(read_id("tokenizer.ggml.unknown_token_id", &unk));
  OSPREY_TRY(read_id("tokenizer.ggml.eot_token_id", &eot));
  OSPREY_TRY(read_id("tokenizer.ggml.eom_token_id", &eom));
  std::vector<int64_t> fim_eog;
  for (const char* key : {"tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id",
                          "tokenizer.ggml.fim_sep_token_id"}) {
    int64_t id = -1;
    OSPREY_TRY(read_id(key, &id));
    if (id >= 0) fim_eog.push_back(id);
  }
  // Read only to reject out-of-range values early; not used for text.
  for (const char* key : {"tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id",
                          "tokenizer.ggml.mask_token_id", "tokenizer.ggml.fim_pre_token_id",
                          "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"}) {
    OSPREY_TRY(read_id(key, &other));
  }
  t.bos = static_cast<int32_t>(bos);
  t.eos = static_cast<int32_t>(eos);
  t.unk = static_cast<int32_t>(unk);

  for (auto [key, dst] : {std::pair{"tokenizer.ggml.add_bos_token", &t.add_bos},
                          std::pair{"tokenizer.ggml.add_eos_token", &t.add_eos},
                          std::pair{"tokenizer.ggml.add_space_prefix", &t.add_space_prefix},
                          std::pair{"tokenizer.ggml.normalizer.lowercase", &t.lowercase}}) {
    auto v = f.get_bool(key, *dst);
    if (!v.ok()) return fail(v.error());
    *dst = v.value();
  }

  // Control-looking texts become control tokens; end-of-generation tokens by text and id.
  auto id_of = [&](const char* s) {
    auto it = t.text_to_id.find(std::string_view(s));
    return it == t.text_to_id.end() ? -1 : it->second;
  };
  for (const char* s : kControlTexts) {
    if (int32_t id = id_of(s); id >= 0) t.attr[id] |= tok::kAttrControl;
  }
  for (const char* s : kFimEogTexts) {
    if (int32_t id = id_of(s); id >= 0) t.eog.insert(id);
  }
  for (int64_t id : fim_eog) t.eog.insert(static_cast<int32_t>(id));
  for (const char* s : kEogTexts) {
    if (int32_t id = id_of(s); id >= 0) {
      t.eog.insert(id);
      t.attr[id] |= tok::kAttrControl;
    }
  }
  for (int64_t id : {static_cast<int64_t>(t.eos), eot, eom}) {
    if (id >= 0) t.eog.insert(static_cast<int32_t>(id));
  }
  // Harmony-style vocabularies end turns with <|return|>/<|call|>; there <|end|> only closes
  // a message and is plain text.
  const int32_t end_id = id_of("<|end|>");
  if (end_id >= 0 && t.eog.count(end_id) &&
      ((t.eog.count(id_of("<|return|>")) && t.eog.count(id_of("<|call|>"))) ||
       (t.eog.count(id_of("<|calls|>")) && t.eog.count(id_of("<|flush|>"))))) {
    t.eog.erase(end_id);
    t.attr[end_id] = tok::kAttrUserDefined;
  }
  for (const char* s : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    if (int32_t id = id_of(s); id >= 0) t.attr[id] = tok::kAttrUserDefined;
  }

  // Special-token matcher: control, user-defined and unknown tokens.
  std::vector<int32_t> special_ids;
  std::vector<bool> always;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t a = t.attr[i];
    if (a & (tok::kAttrControl | tok::kAttrUserDefined | tok::kAttrUnknown)) {
      special_ids.push_back(static_cast<int32_t>(i));
      always.push_back(!(a & (tok::kAttrControl | tok::kAttrUnknown)));
    }
  }
  t.specials.build(t.text, special_ids, always);

  std::fill(std::begin(t.byte_tokens), std::end(t.byte_tokens), -1);
  if (spm) {
    for (int b = 0; b < 256; ++b) {
      char hex[7];
      std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
      int32_t id = id_of(hex);
      if (id < 0) {
        const char one = static_cast<char>(b);
        auto it = t.text_to_id.find(std::string_view(&one, 1));
        if (it != t.text_to_id.end()) id = it->second;
      }
      t.byte_tokens[b] = id;
    }
  }

  // Decoded bytes of every token, special tokens rendered (hidden at lookup when not asked for).
  t.piece.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& s = t.text[i];
    const uint8_t a = t.attr[i];
    std::string& p = t.piece[i];
    if (a & (tok::kAttrControl | tok::kAttrUnknown | tok::kAttrUserDefined)) {
      p = s;
    } else if (a & tok::kAttrNormal) {
      if (spm || wpm) {  // both mark a word start with U+2581
        p = s;
        replace_all(p, kSpmSpace, " ");
      } else {
        for (uint32_t cp : tok::decode_utf8_lossy(s)) {
          const int b = tok::unicode_to_byte(cp);
          // A character outside the byte map cannot come from byte-level BPE; keep it as text.
          if (b >= 0) p.push_back(static_cast<char>(b));
          else tok::append_utf8(p, cp);
        }
      }
    } else if (a & tok::kAttrByte) {
      const int b = parse_byte_token(s);
      if (b >= 0) p.assign(1, static_cast<char>(b));
    }
    // unused / undefined tokens decode to nothing
  }

  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

void Tokenizer::Impl::encode_bpe_text(std::string_view s, std::vector<int32_t>& out) const {
  const std::vector<uint32_t> cps = tok::decode_utf8_lossy(s);
  std::vector<uint8_t> flags(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) flags[i] = tok::cp_flags(cps[i]);
  std::string word, utf8;
  for (const tok::Span& w : tok::pretokenize(cps, flags, pre_info->stages)) {
    // Re-encode the word's codepoints, then map every byte to its printable stand-in.
    word.clear();
    for (uint32_t i = w.first; i < w.second; ++i) {
      utf8.clear();
      tok::append_utf8(utf8, cps[i]);
      for (char c : utf8) word += tok::byte_to_unicode(static_cast<uint8_t>(c));
    }
    if (pre_info->ignore_merges) {
      auto it = text_to_id.find(std::string_view(word));
      if (it != text_to_id.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    tok::bpe_word(text_to_id, merges, word, out);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  if (text.size() >= UINT32_MAX) return out;  // positions are 32-bit; see the header
  out.reserve(text.size() / 3 + 4);
  if (add_special && t.add_bos && t.bos >= 0) out.push_back(t.bos);

  std::vector<tok::Fragment> frags;
  t.specials.partition(text, parse_special, frags);
  bool prev_special = true;  // SPM: a space is prefixed at the start and after special tokens
  for (const tok::Fragment& fr : frags) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    std::string_view raw = text.substr(fr.begin, fr.end - fr.begin);
    if (t.kind == Impl::Kind::kBpe) {
      t.encode_bpe_text(raw, out);
    } else if (t.kind == Impl::Kind::kWpm) {
      tok::wpm_text(t.text_to_id, t.unk, t.lowercase, raw, out);
    } else {
      std::string s;
      s.reserve(raw.size() + 3);
      if (t.add_space_prefix && prev_special) s.push_back(' ');
      s.append(raw);
      replace_all(s, " ", kSpmSpace);
      tok::spm_text(t.text_to_id, t.score, t.byte_tokens, t.unk, s, out);
    }
    prev_special = false;
  }

  if (add_special && t.add_eos && t.eos >= 0) out.push_back(t.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Impl& t = *impl_;
  if (!t.valid(id)) return {};
  if (!render_special && (t.attr[id] & (tok::kAttrControl | tok::kAttrUnknown))) return {};
  return t.piece[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  const Impl& t = *impl_;
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    std::string p = token_to_piece(id, render_special);
    if (p.empty()) continue;
    // Undo the space SentencePiece-style encoding put in front of the text.
    if (first && t.add_space_prefix && t.kind == Impl::Kind::kSpm && p[0] == ' ') p.erase(0, 1);
    first = false;
    out += p;
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->text.size()); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos && impl_->bos >= 0; }
bool Tokenizer::add_eos() const { return impl_->add_eos && impl_->eos >= 0; }
bool Tokenizer::is_eog(int32_t id) const { return impl_->eog.count(id) > 0; }
bool Tokenizer::is_control(int32_t id) const {
  return impl_->valid(id) && (impl_->attr[id] & (tok::kAttrControl | tok::kAttrUnknown));
}
const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return impl_->valid(id) ? impl_->text[id] : kEmpty;
}
const std::string& Tokenizer::model() const { return impl_->model; }
const std::string& Tokenizer::pre_type() const { return impl_->pre; }

std::string Utf8StreamDecoder::push(std::string_view piece) {
  pending_.append(piece);
  const size_t k = tok::utf8_complete_prefix(pending_);
  std::string ready = pending_.substr(0, k);
  pending_.erase(0, k);
  return ready;
}

std::string Utf8StreamDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace osprey
