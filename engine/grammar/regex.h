// Regular expressions (the subset JSON schema `pattern`s use) compiled to grammar elements.
// The elements match the *JSON-escaped* text of the strings the regex matches, because they
// sit between the quotes of a JSON string: `"` and `\` come out as \" and \\, newline and tab
// as \n and \t, other control characters are never produced.
//
// Supported: literals, escapes (\d \w \s \D \W \S \n \t \r \f \v \xHH \uHHHH, escaped
// punctuation), `.`, classes [a-z] [^...], groups (...) (?:...), alternation, quantifiers
// * + ? {n} {n,} {n,m} (a trailing lazy `?` is accepted and changes nothing), and anchors
// ^ and $ at the very start and end. Unanchored patterns match anywhere (JSON schema
// semantics), so they get any text on the open side(s).
#pragma once
#include <string_view>

#include "engine/grammar/grammar.h"
#include "kernels/base/status.h"

namespace osprey::grammar {

Result<Seq> regex_to_grammar(GrammarBuilder& b, std::string_view pattern);

// One character of `decoded` as it appears inside a JSON string.
Seq json_string_char(GrammarBuilder& b, const CharSet& decoded);

}  // namespace osprey::grammar
