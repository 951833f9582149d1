// Internal: the Jinja syntax tree shared by the parser and the evaluator.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace osprey::chat::jinja {

using Json = nlohmann::ordered_json;

// Internal failure signal; JinjaTemplate::parse/render turn it into a Status at the boundary.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class EK { Literal, Name, List, Tuple, Dict, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, Ternary };

struct Arg {
  std::string name;  // empty: positional
  ExprPtr value;
};

struct Expr {
  EK kind;
  int line = 0;
  Json literal;
  std::string name;            // Name / Attr attribute / Filter / Test / operator
  ExprPtr a, b, c;             // operands (Ternary: a if b else c; Slice: start, stop, step in b, c, d)
  ExprPtr d;
  std::vector<ExprPtr> items;  // List/Tuple items; Dict: key, value, key, value...
  std::vector<Arg> args;       // Call / Filter / Test arguments
  bool negate = false;         // `is not`
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

enum class SK { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, With, FilterBlock, Break, Continue };

struct Branch {
  ExprPtr cond;  // null: else
  Body body;
};

struct Stmt {
  SK kind;
  int line = 0;
  std::string text;                  // Text
  ExprPtr expr;                      // Output / For iterable / Set value / CallBlock call / FilterBlock filter
  std::vector<Branch> branches;      // If
  std::vector<std::string> targets;  // For variables, Set names ({ns, attr} when attr_target)
  bool attr_target = false;
  ExprPtr filter;                    // for ... if filter
  Body body, else_body;              // For body/else, Macro/SetBlock/CallBlock body
  std::string name;                  // Macro name
  std::vector<std::string> params;   // Macro / CallBlock(caller) parameters, With names
  std::vector<ExprPtr> defaults;     // parallel to params, null where none (With: values)
};

// Lexer + parser entry point (jinja_parse.cpp).
Body parse_template(const std::string& src);

}  // namespace osprey::chat::jinja
