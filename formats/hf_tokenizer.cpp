// Hugging Face tokenizer files -> GGUF tokenizer fields. The rules follow llama.cpp's
// convert_hf_to_gguf.py (TextModel.get_vocab_base, _create_vocab_sentencepiece, BertModel.set_vocab)
// and gguf-py's SpecialVocab, read for the facts only.
#include "formats/hf_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace osprey::hf {

namespace fs = std::filesystem;

Result<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::error(path + ": not valid JSON");
  return j;
}

namespace {

const std::string kSpaceMark = "\xe2\x96\x81";  // U+2581, SentencePiece's space

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Added tokens some models forget to mark special (llama.cpp's does_token_look_special).
bool looks_special(const std::string& t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (starts_with(t, "<|") && ends_with(t, "|>")) return true;
  if (starts_with(t, "<\xef\xbd\x9c") && ends_with(t, "\xef\xbd\x9c>")) return true;  // fullwidth bars
  return starts_with(t, "<unused") && ends_with(t, ">");
}

std::optional<nlohmann::json> optional_json(const fs::path& p, Status* st) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  auto j = read_json(p.string());
  if (!j) {
    *st = j.status();
    return std::nullopt;
  }
  return std::move(j.value());
}

// A special token entry of tokenizer_config.json: a string or {"content": ...}.
std::string token_content(const nlohmann::json& cfg, const std::string& key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return "";
}

std::string special_token_id_of(const nlohmann::json& item) {
  auto st = item.find("SpecialToken");
  if (st == item.end() || !st->is_object()) return "";
  auto id = st->find("id");
  return id != st->end() && id->is_string() ? id->get<std::string>() : "";
}

std::string sequence_id_of(const nlohmann::json& item) {
  auto st = item.find("Sequence");
  if (st == item.end() || !st->is_object()) return "";
  auto id = st->find("id");
  return id != st->end() && id->is_string() ? id->get<std::string>() : "";
}

void parse_normalizer(const nlohmann::json& n, Vocab* v) {
  if (!n.is_object()) return;
  const std::string type = n.value("type", "");
  if (type == "Lowercase") v->normalizer_lowercase = true;
  else if (type == "StripAccents") v->normalizer_strip_accents = true;
  else if (type == "BertNormalizer") {
    if (n.contains("lowercase") && n["lowercase"].is_boolean()) v->normalizer_lowercase = n["lowercase"].get<bool>();
    if (n.contains("strip_accents") && n["strip_accents"].is_boolean())
      v->normalizer_strip_accents = n["strip_accents"].get<bool>();
  } else if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const auto& c : n["normalizers"]) parse_normalizer(c, v);
  }
}

// gguf-py's SpecialVocab: special token ids, add_*_token flags, chat template, merges.
Status load_special(const fs::path& dir, const nlohmann::json* tok, bool want_merges, int64_t n_vocab, Vocab* v) {
  std::vector<std::string> types = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  auto set_id = [&](const std::string& typ, const nlohmann::json& id) -> Status {
    if (!id.is_number_integer()) return Status();
    const int64_t t = id.get<int64_t>();
    if (t < 0) return Status::error("special token " + typ + " has negative id " + std::to_string(t));
    if (n_vocab > 0 && t >= n_vocab) return Status();  // out of range: skipped, as llama.cpp does
    v->special_ids.emplace(typ, t);                    // the first source wins
    return Status();
  };
  nlohmann::json added = nlohmann::json::array();
  if (tok) {
    if (want_merges) {
      auto m = tok->find("model");
      if (m != tok->end() && m->is_object() && m->contains("merges") && (*m)["merges"].is_array()) {
        for (const auto& e : (*m)["merges"]) {
          if (e.is_string()) {
            v->merges.push_back(e.get<std::string>());
          } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
            // Newer files store pairs so that parts may hold spaces; GGUF joins with a space and
            // writes spaces inside a part as U+0120.
            v->merges.push_back(replace_all(e[0].get<std::string>(), " ", "\xc4\xa0") + " " +
                                replace_all(e[1].get<std::string>(), " ", "\xc4\xa0"));
          } else {
            return Status::error("tokenizer.json: unknown merges format");
          }
        }
      }
    }
    if (tok->contains("normalizer")) parse_normalizer((*tok)["normalizer"], v);
    if (tok->contains("added_tokens") && (*tok)["added_tokens"].is_array()) added = (*tok)["added_tokens"];
  }
  Status st;
  std::optional<nlohmann::json> cfg = optional_json(dir / "tokenizer_config.json", &st);
  OSPREY_TRY(st);
  if (tok) {
    std::string bos = cfg ? token_content(*cfg, "bos_token") : "", cls = cfg ? token_content(*cfg, "cls_token") : "";
    std::string eos = cfg ? token_content(*cfg, "eos_token") : "", sep = cfg ? token_content(*cfg, "sep_token") : "";
    if (bos.empty() && !cls.empty() && cfg) (*cfg)["bos_token"] = bos = cls;
    if (eos.empty() && !sep.empty() && cfg) (*cfg)["eos_token"] = eos = sep;
    auto pp = tok->find("post_processor");
    if (pp != tok->end() && pp->is_object()) {
      std::vector<nlohmann::json> procs;
      if (pp->contains("processors") && (*pp)["processors"].is_array())
        for (const auto& p : (*pp)["processors"]) procs.push_back(p);
      else
        procs.push_back(*pp);
      for (const nlohmann::json& p : procs) {
        const std::string type = p.is_object() ? p.value("type", "") : "";
        if (type == "ByteLevel") {
          v->add_special.emplace("bos", false);
          v->add_special.emplace("eos", false);
        } else if (type == "RobertaProcessing") {
          v->add_special["bos"] = v->add_special["eos"] = v->add_special["sep"] = true;
        } else if (type == "TemplateProcessing") {
          const nlohmann::json single = p.value("single", nlohmann::json::array());
          const nlohmann::json pair = p.value("pair", nlohmann::json::array());
          std::string first, last;
          if (single.is_array() && single.size() > 1) {
            first = special_token_id_of(single.front());
            if (!first.empty()) {
              if (!cfg) bos = first;
              else if (first != bos && first != cls) {
                if (bos.empty()) (*cfg)["bos_token"] = bos = first;
                if (cls.empty()) (*cfg)["cls_token"] = cls = first;
              }
              v->add_special["bos"] = first == bos || first == cls;
            }
            last = special_token_id_of(single.back());
            if (!last.empty()) {
              if (!cfg) eos = last;
              else if (last != eos) {
                if (std::find(types.begin(), types.end(), "eot") == types.end()) {
                  types.push_back("eot");
                  (*cfg)["eot_token"] = eos;
                }
                (*cfg)["eos_token"] = eos = last;
              }
              v->add_special["eos"] = last == eos;
            }
          }
          if (pair.is_array() && !pair.empty()) {
            size_t start = (!first.empty() && special_token_id_of(pair.front()) == first) ? 1 : 0;
            size_t stop = (!last.empty() && special_token_id_of(pair.back()) == last) ? pair.size() - 1 : pair.size();
            if (start < stop) {
              std::vector<nlohmann::json> mid(pair.begin() + start, pair.begin() + stop);
              if (sequence_id_of(mid.front()) == "A" && sequence_id_of(mid.back()) == "B" && mid.size() > 2) {
                mid = std::vector<nlohmann::json>(mid.begin() + 1, mid.end() - 1);
                bool add_sep = false;
                const std::string e0 = special_token_id_of(mid[0]);
                if (!e0.empty() && (e0 == sep || e0 == eos) && last.empty()) add_sep = true;
                if (mid.size() == 2) {
                  const std::string e1 = special_token_id_of(mid[1]);
                  if (!e1.empty() && (e1 == sep || e1 == eos)) add_sep = true;
                }
                v->add_special["sep"] = add_sep;
                if (add_sep && sep.empty() && cfg) (*cfg)["sep_token"] = eos;
              }
            }
          }
        }
      }
    }
  }
  if (cfg) {
    std::optional<std::string> alt;
    std::error_code ec;
    if (fs::is_regular_file(dir / "chat_template.jinja", ec)) {
      std::ifstream in(dir / "chat_template.jinja", std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      alt = ss.str();
    } else if (auto ct = optional_json(dir / "chat_template.json", &st); ct && ct->contains("chat_template") &&
                                                                          (*ct)["chat_template"].is_string()) {
      alt = (*ct)["chat_template"].get<std::string>();
    }
    OSPREY_TRY(st);
    auto ct = cfg->find("chat_template");
    if (ct != cfg->end() && ct->is_string()) {
      v->chat_template = ct->get<std::string>();
    } else if (ct != cfg->end() && ct->is_array()) {
      // Named templates: GGUF keeps the "default" one under tokenizer.chat_template.
      for (const auto& e : *ct)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          v->chat_template = e["template"].get<std::string>();
    } else if (alt) {
      v->chat_template = alt;
    }
    for (const std::string& typ : types) {
      auto add = cfg->find("add_" + typ + "_token");
      if (add != cfg->end() && add->is_boolean()) v->add_special.emplace(typ, add->get<bool>());
      const std::string content = token_content(*cfg, typ + "_token");
      if (content.empty()) continue;
      for (const auto& a : added)
        if (a.is_object() && a.value("content", "") == content && a.contains("id")) {
          OSPREY_TRY(set_id(typ, a["id"]));
          break;
        }
    }
  }
  std::optional<nlohmann::json> config = optional_json(dir / "config.json", &st);
  OSPREY_TRY(st);
  if (config && config->is_object())
    for (const std::string& typ : types) {
      auto it = config->find(typ + "_token_id");
      if (it == config->end() && config->contains("text_config") && (*config)["text_config"].is_object()) {
        auto t2 = (*config)["text_config"].find(typ + "_token_id");
        if (t2 != (*config)["text_config"].end()) OSPREY_TRY(set_id(typ, *t2));
      } else if (it != config->end()) {
        OSPREY_TRY(set_id(typ, *it));
      }
    }
  return Status();
}

// tokenizer.json's vocabulary with its added tokens, by id, typed as get_vocab_base does.
Status vocab_from_tokenizer_json(const nlohmann::json& tok, int64_t vocab_size, const std::string& where, Vocab* v) {
  auto model = tok.find("model");
  if (model == tok.end() || !model->is_object() || !model->contains("vocab") || !(*model)["vocab"].is_object())
    return Status::error(where + ": model.vocab is missing or not an object");
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;
  int64_t max_id = -1;
  for (auto it = (*model)["vocab"].begin(); it != (*model)["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      return Status::error(where + ": token '" + it.key() + "' has no valid id");
    const int64_t id = it.value().get<int64_t>();
    by_id[id] = {it.key(), NORMAL};
    max_id = std::max(max_id, id);
  }
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array())
    for (const auto& a : tok["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
          !a.contains("content") || !a["content"].is_string())
        return Status::error(where + ": an added_tokens entry lacks an id or content");
      const int64_t id = a["id"].get<int64_t>();
      std::string content = a["content"].get<std::string>();
      int32_t type;
      if (a.value("special", false) || looks_special(content)) {
        type = CONTROL;
      } else {
        content = replace_all(content, kSpaceMark, " ");  // user-defined tokens are pre-normalized
        type = USER_DEFINED;
      }
      by_id[id] = {content, type};
      max_id = std::max(max_id, id);
    }
  const int64_t n = vocab_size > 0 ? vocab_size : max_id + 1;
  if (max_id >= n)
    return Status::error(where + ": token id " + std::to_string(max_id) + " is not below the vocabulary size " +
                         std::to_string(n) + " of config.json");
  if (n > (1 << 24)) return Status::error(where + ": vocabulary of " + std::to_string(n) + " tokens is too large");
  v->tokens.resize((size_t)n);
  v->types.resize((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      v->tokens[(size_t)i] = "[PAD" + std::to_string(i) + "]";
      v->types[(size_t)i] = UNUSED;
    } else {
      v->tokens[(size_t)i] = it->second.first;
      v->types[(size_t)i] = it->second.second;
    }
  }
  return Status();
}

// Minimal protobuf reading: varints, and skipping fields of any wire type.
struct Proto {
  const uint8_t* p;
  const uint8_t* end;
  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const uint8_t b = *p++;
      v |= (uint64_t)(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;
  }
  // Reads a field header and, for length-delimited fields, the payload bounds.
  bool field(uint32_t* num, uint32_t* wire, const uint8_t** body, uint64_t* len) {
    uint64_t key;
    if (!varint(&key)) return false;
    *num = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
      case 0: return varint(len);
      case 1: if (end - p < 8) return false; *body = p; p += 8; return true;
      case 5: if (end - p < 4) return false; *body = p; p += 4; return true;
      case 2:
        if (!varint(len) || *len > (uint64_t)(end - p)) return false;
        *body = p;
        p += *len;
        return true;
      default: return false;
    }
  }
};

}  // namespace

Result<std::vector<SentencePiece>> parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& name) {
  std::vector<SentencePiece> out;
  Proto top{data, data + size};
  while (top.p < top.end) {
    uint32_t num, wire;
    const uint8_t* body = nullptr;
    uint64_t len = 0;
    if (!top.field(&num, &wire, &body, &len)) return Status::error(name + ": malformed SentencePiece model");
    if (num != 1) continue;  // only ModelProto.pieces matters here
    if (wire != 2) return Status::error(name + ": malformed piece entry");
    SentencePiece sp;
    Proto m{body, body + len};
    while (m.p < m.end) {
      uint32_t n2, w2;
      const uint8_t* b2 = nullptr;
      uint64_t l2 = 0;
      if (!m.field(&n2, &w2, &b2, &l2)) return Status::error(name + ": malformed piece " + std::to_string(out.size()));
      if (n2 == 1 && w2 == 2) sp.piece.assign(reinterpret_cast<const char*>(b2), (size_t)l2);
      else if (n2 == 2 && w2 == 5) std::memcpy(&sp.score, b2, 4);
      else if (n2 == 3 && w2 == 0) sp.type = (int32_t)l2;
    }
    out.push_back(std::move(sp));
  }
  if (out.empty()) return Status::error(name + ": no pieces in the SentencePiece model");
  return out;
}

Result<std::string> bpe_pre_tokenizer_name(const nlohmann::json& tok) {
  static const std::string kQwen2 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+";
  static const std::string kLlama3 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  auto pt = tok.find("pre_tokenizer");
  if (pt == tok.end() || !pt->is_object()) return Status::error("tokenizer.json has no pre_tokenizer");
  std::vector<nlohmann::json> parts;
  if (pt->value("type", "") == "Sequence" && pt->contains("pretokenizers") && (*pt)["pretokenizers"].is_array())
    for (const auto& p : (*pt)["pretokenizers"]) parts.push_back(p);
  else
    parts.push_back(*pt);
  std::string regex;
  bool digits_single = false, byte_level_regex = false, byte_level = false;
  for (const auto& p : parts) {
    if (!p.is_object()) continue;
    const std::string type = p.value("type", "");
    if (type == "Split" && p.contains("pattern") && p["pattern"].is_object() && p["pattern"].contains("Regex") &&
        p["pattern"]["Regex"].is_string())
      regex = p["pattern"]["Regex"].get<std::string>();
    else if (type == "Digits") digits_single = p.value("individual_digits", false);
    else if (type == "ByteLevel") {
      byte_level = true;
      byte_level_regex = p.value("use_regex", true);
    }
  }
  if (byte_level && regex == kQwen2 && !byte_level_regex && parts.size() == 2) return std::string("qwen2");
  if (byte_level && regex == kLlama3 && !byte_level_regex && parts.size() == 2) return std::string("llama-bpe");
  if (byte_level && regex.empty() && digits_single && byte_level_regex && parts.size() == 2)
    return std::string("smollm");
  if (byte_level && regex.empty() && byte_level_regex && parts.size() == 1) return std::string("gpt-2");
  return Status::error("tokenizer.json: BPE pre-tokenizer " + pt->dump().substr(0, 300) +
                       " is not recognised (known: the pre-tokenizers of GPT-2, SmolLM, Llama 3, Qwen2)");
}

Result<Vocab> load_vocab(const std::string& dir_str, VocabKind kind, int64_t vocab_size) {
  const fs::path dir(dir_str);
  Vocab v;
  Status st;
  std::optional<nlohmann::json> tok = optional_json(dir / "tokenizer.json", &st);
  if (!st.ok()) return st;
  const std::string tj = (dir / "tokenizer.json").string();
  switch (kind) {
    case VocabKind::BPE: {
      if (!tok) return Status::error(dir_str + ": tokenizer.json is missing");
      if ((*tok)["model"].value("type", "") != "BPE")
        return Status::error(tj + ": model type '" + (*tok)["model"].value("type", "") + "', expected BPE");
      auto pre = bpe_pre_tokenizer_name(*tok);
      if (!pre) return pre.status().with_context(tj);
      v.model = "gpt2";
      v.pre = pre.value();
      OSPREY_TRY(vocab_from_tokenizer_json(*tok, vocab_size, tj, &v));
      OSPREY_TRY(load_special(dir, &*tok, true, 0, &v));
      if (v.merges.empty()) return Status::error(tj + ": a BPE tokenizer without merges");
      break;
    }
    case VocabKind::WORDPIECE: {
      if (tok) {
        if ((*tok)["model"].value("type", "") != "WordPiece")
          return Status::error(tj + ": model type '" + (*tok)["model"].value("type", "") + "', expected WordPiece");
        OSPREY_TRY(vocab_from_tokenizer_json(*tok, vocab_size, tj, &v));
      } else {
        std::ifstream in(dir / "vocab.txt");
        if (!in) return Status::error(dir_str + ": neither tokenizer.json nor vocab.txt");
        nlohmann::json fake = {{"model", {{"vocab", nlohmann::json::object()}}}};
        std::string line;
        for (int64_t id = 0; std::getline(in, line); ++id) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          fake["model"]["vocab"][line] = id;
        }
        OSPREY_TRY(vocab_from_tokenizer_json(fake, vocab_size, (dir / "vocab.txt").string(), &v));
      }
      // llama.cpp's WordPiece vocabulary marks word starts with U+2581 ("phantom space") and
      // drops the "##" of continuations.
      for (size_t i = 0; i < v.tokens.size(); ++i) {
        if (v.types[i] == CONTROL) continue;
        std::string& t = v.tokens[i];
        t = starts_with(t, "##") ? t.substr(2) : kSpaceMark + t;
      }
      v.model = "bert";
      v.pre = "default";
      OSPREY_TRY(load_special(dir, tok ? &*tok : nullptr, false, (int64_t)v.tokens.size(), &v));
      break;
    }
    case VocabKind::SENTENCEPIECE: {
      const fs::path mp = dir / "tokenizer.model";
      std::ifstream in(mp, std::ios::binary);
      if (!in) return Status::error(dir_str + ": tokenizer.model is missing");
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto pieces = parse_sentencepiece_model(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), mp.string());
      if (!pieces) return pieces.status();
      const int64_t n = vocab_size > 0 ? vocab_size : (int64_t)pieces->size();
      if (n > (1 << 24)) return Status::error(mp.string() + ": vocabulary too large");
      v.tokens.resize((size_t)n);
      v.scores.assign((size_t)n, -10000.f);
      v.types.assign((size_t)n, UNUSED);
      for (int64_t i = 0; i < n; ++i) v.tokens[(size_t)i] = "[PAD" + std::to_string(i) + "]";
      for (size_t i = 0; i < pieces->size() && (int64_t)i < n; ++i) {
        const SentencePiece& p = (*pieces)[i];
        v.tokens[i] = p.piece;
        v.scores[i] = p.score;
        // SentencePiece's USER_DEFINED pieces count as normal text, as in llama.cpp's converter.
        v.types[i] = (p.type == UNKNOWN || p.type == CONTROL || p.type == UNUSED || p.type == BYTE) ? p.type : NORMAL;
      }
      if (auto added = optional_json(dir / "added_tokens.json", &st); added && added->is_object()) {
        for (auto it = added->begin(); it != added->end(); ++it) {
          if (!it.value().is_number_integer()) continue;
          const int64_t id = it.value().get<int64_t>();
          if (id < 0 || id >= n) continue;
          v.tokens[(size_t)id] = it.key();
          v.scores[(size_t)id] = -1000.f;
          v.types[(size_t)id] = USER_DEFINED;
        }
      }
      OSPREY_TRY(st);
      if (auto cfg = optional_json(dir / "tokenizer_config.json", &st); cfg && cfg->contains("added_tokens_decoder") &&
                                                                      (*cfg)["added_tokens_decoder"].is_object()) {
        for (auto it = (*cfg)["added_tokens_decoder"].begin(); it != (*cfg)["added_tokens_decoder"].end(); ++it) {
          char* endp = nullptr;
          const long long id = std::strtoll(it.key().c_str(), &endp, 10);
          if (!endp || *endp || id < 0 || id >= n || !it.value().is_object() || !it.value().contains("content") ||
              !it.value()["content"].is_string())
            continue;
          std::string content = it.value()["content"].get<std::string>();
          if (it.value().value("special", false) || looks_special(content)) {
            v.types[(size_t)id] = CONTROL;
          } else {
            content = replace_all(content, kSpaceMark, " ");
            v.types[(size_t)id] = USER_DEFINED;
          }
          v.scores[(size_t)id] = -1000.f;
          v.tokens[(size_t)id] = content;
        }
      }
      OSPREY_TRY(st);
      v.model = "llama";
      v.pre = "default";
      OSPREY_TRY(load_special(dir, tok ? &*tok : nullptr, false, n, &v));
      break;
    }
  }
  return v;
}

}  // namespace osprey::hf
