// Internal: the Go template syntax tree shared by the parser and the executor.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace osprey::chat::gotmpl {

using Json = nlohmann::ordered_json;

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void fail(int line, const std::string& m) { throw Error("line " + std::to_string(line) + ": " + m); }

struct Pipe;
enum class AK { Field, Var, Dot, Literal, Func, Pipe };
struct Arg {
  AK kind;
  std::string name;                // Var ("$", "$x") or Func name
  std::vector<std::string> chain;  // field idents after the operand
  Json literal;
  std::shared_ptr<Pipe> pipe;      // parenthesized pipeline
};
struct Cmd {
  std::vector<Arg> args;
};
struct Pipe {
  std::vector<std::string> decl;  // declared / assigned variables
  bool assign = false;            // `=` rather than `:=`
  std::vector<Cmd> cmds;
  int line = 0;
};

enum class NK { List, Text, Action, If, Range, With, Break, Continue };
struct Node {
  NK kind;
  int id = 0;
  int line = 0;
  std::string text;
  std::shared_ptr<Pipe> pipe;
  std::vector<std::unique_ptr<Node>> children;  // List
  std::unique_ptr<Node> list, else_list;        // If / Range / With
};

// Parses a whole template; `vars` collects every field identifier (for GoTemplate::uses).
std::unique_ptr<Node> parse_template(const std::string& src, std::vector<std::string>& vars);

}  // namespace osprey::chat::gotmpl
