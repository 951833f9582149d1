// Chat templates: the Jinja engine against Python jinja2 renders of real model templates
// (tests/data/chat/jinja_ref.json, made by tests/scripts/gen_chat_template_ref.py), the Go
// template engine on Ollama-style TEMPLATE layers, Ollama's prompt semantics, and error paths.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "chat_test_data.h"
#include "engine/chat/go_template.h"
#include "engine/chat/jinja.h"
#include "engine/chat/prompt.h"

using namespace osprey::chat;
using OJson = nlohmann::ordered_json;

namespace {

using osprey::test::read_file;
std::string data_path(const std::string& rel) { return osprey::test::chat_data_path(rel); }

std::string render_j(const std::string& src, const OJson& ctx = OJson::object()) {
  auto t = JinjaTemplate::parse(src);
  if (!t.ok()) return "PARSE ERROR: " + t.error();
  auto r = (*t)->render(ctx, 1721995200);
  if (!r.ok()) return "ERROR: " + r.error();
  return *r;
}
std::string render_j_error(const std::string& src, const OJson& ctx = OJson::object()) {
  auto t = JinjaTemplate::parse(src);
  if (!t.ok()) return t.error();
  auto r = (*t)->render(ctx);
  return r.ok() ? "" : r.error();
}
std::string render_go(const std::string& src, const OJson& data = OJson::object()) {
  auto t = GoTemplate::parse(src);
  if (!t.ok()) return "PARSE ERROR: " + t.error();
  auto r = (*t)->render(data, 1721995200);
  if (!r.ok()) return "ERROR: " + r.error();
  return *r;
}
std::string render_go_error(const std::string& src, const OJson& data = OJson::object()) {
  auto t = GoTemplate::parse(src);
  if (!t.ok()) return t.error();
  auto r = (*t)->render(data);
  return r.ok() ? "" : r.error();
}

Message msg(const std::string& role, const std::string& content) {
  Message m;
  m.role = role;
  m.content = content;
  return m;
}

std::vector<Message> messages_from(const nlohmann::json& arr) {
  std::vector<Message> out;
  for (const auto& j : arr) {
    Message m = msg(j.value("role", ""), j.value("content", ""));
    m.thinking = j.value("thinking", "");
    if (j.contains("tool_calls")) m.tool_calls = j["tool_calls"];
    m.tool_name = j.value("tool_name", "");
    m.tool_call_id = j.value("tool_call_id", "");
    out.push_back(m);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Real model templates vs Python jinja2 (HF settings): byte-identical output for every case.

TEST(ChatJinjaReference, AllTemplatesByteIdentical) {
  std::string text = read_file(data_path("jinja_ref.json"));
  ASSERT_FALSE(text.empty()) << "missing tests/data/chat/jinja_ref.json";
  OJson ref = OJson::parse(text);
  std::time_t now = ref["now"].get<long long>();
  int checked = 0, errors = 0, by_transformers = 0;
  for (const auto& c : ref["cases"]) {
    std::string name = c["template"].get<std::string>() + "/" + c["case"].get<std::string>();
    SCOPED_TRACE(name);
    std::string src = read_file(data_path("templates/" + c["template"].get<std::string>() + ".jinja"));
    ASSERT_FALSE(src.empty());
    auto t = JinjaTemplate::parse(src);
    ASSERT_TRUE(t.ok()) << t.error();

    // The engine alone, on the exact context Python rendered.
    auto direct = (*t)->render(c["context"], now);
    // The whole render_chat path from Ollama-style messages.
    TemplateSource ts;
    ts.jinja_template = src;
    ts.bos_token = c["bos_token"];
    ts.eos_token = c["eos_token"];
    PromptOptions o;
    o.tools = c["tools"].is_null() ? nlohmann::json(nullptr) : nlohmann::json::parse(c["tools"].dump());
    if (!c["think"].is_null()) o.think = c["think"].get<bool>();
    o.add_generation_prompt = c["add_generation_prompt"];
    o.now = now;
    auto chat = render_chat(ts, messages_from(nlohmann::json::parse(c["messages"].dump())), o);

    if (c.contains("error")) {
      EXPECT_FALSE(direct.ok());
      EXPECT_FALSE(chat.ok());
      if (!direct.ok() && !c.contains("error_kind")) {
        EXPECT_NE(direct.error().find(c["error"].get<std::string>()), std::string::npos) << direct.error();
      }
      ++errors;
    } else {
      std::string want = c["expected"];
      ASSERT_TRUE(direct.ok()) << direct.error();
      EXPECT_EQ(*direct, want);
      ASSERT_TRUE(chat.ok()) << chat.error();
      EXPECT_EQ(*chat, want);
      // Cases with tools or thinking: transformers' own apply_chat_template render too.
      if (c.contains("transformers")) {
        EXPECT_EQ(*chat, c["transformers"].get<std::string>());
        ++by_transformers;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 350);
  EXPECT_EQ(errors, 16);
  EXPECT_EQ(by_transformers, 181);
}

// ---------------------------------------------------------------------------------------------
// Jinja features.

TEST(ChatJinja, WhitespaceControlAndHfBlockTrimming) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks drops indentation before it.
  EXPECT_EQ(render_j("{% if true %}\n  a\n  {% endif %}\nb"), "  a\nb");
  EXPECT_EQ(render_j("x  {{- ' y ' -}}  z"), "x y z");
  EXPECT_EQ(render_j("a\n    {%- if true -%}\n   b   {%- endif %}"), "ab");
  EXPECT_EQ(render_j("{# comment #}\nq"), "q");
  EXPECT_EQ(render_j("  {%+ if true %}k{% endif %}"), "  k");
  EXPECT_EQ(render_j("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
  EXPECT_EQ(render_j("{{ 'a' }}\n{{ 'b' }}\n"), "a\nb\n");  // expressions keep their newlines
}

TEST(ChatJinja, LoopsAndLoopVariables) {
  OJson ctx = {{"xs", {"a", "b", "c"}}};
  EXPECT_EQ(render_j("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", ctx),
            "1a,2b,3c");
  EXPECT_EQ(render_j("{% for x in xs %}{{ loop.index0 }}{{ loop.first }}{{ loop.length }}{{ loop.revindex }}|{% endfor %}", ctx),
            "0True33|1False32|2False31|");
  EXPECT_EQ(render_j("{% for x in xs %}{{ loop.previtem or '-' }}{{ loop.nextitem or '-' }} {% endfor %}", ctx), "-b ac b- ");
  EXPECT_EQ(render_j("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render_j("{% for x in xs if x != 'b' %}{{ loop.index }}{{ x }}{% endfor %}", ctx), "1a2c");
  EXPECT_EQ(render_j("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render_j("{% for x in xs %}{% if x == 'b' %}{% continue %}{% endif %}{% if x == 'c' %}{% break %}{% endif %}{{ x }}{% endfor %}", ctx), "a");
  EXPECT_EQ(render_j("{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(5, 1, -2) %}{{ i }}{% endfor %}"), "01253");
  EXPECT_EQ(render_j("{% for x in xs %}{{ loop.cycle('o', 'e') }}{% endfor %}", ctx), "oeo");
}

TEST(ChatJinja, SetNamespaceMacroCall) {
  EXPECT_EQ(render_j("{% set x = 1 %}{% for i in [1,2] %}{% set x = 5 %}{% endfor %}{{ x }}"), "1");  // loop scope
  EXPECT_EQ(render_j("{% set ns = namespace(n=0, s='') %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(render_j("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render_j("{% set blk %}in {{ 1 + 1 }}{% endset %}[{{ blk }}]"), "[in 2]");
  EXPECT_EQ(render_j("{% set a = 1 %}{% with a = a + 1, b = 5 %}{{ a }}{{ b }}{% endwith %}{{ a }}{{ b }}"), "251");
  EXPECT_EQ(render_j("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}"),
            "Hi A! Hi B?");
  EXPECT_EQ(render_j("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %}"),
            "<b>bold</b>");
}

TEST(ChatJinja, ExpressionsAndAccess) {
  OJson ctx = {{"m", {{"role", "user"}, {"list", {1, 2, 3, 4}}}}, {"s", "héllo"}};
  EXPECT_EQ(render_j("{{ m.role }}{{ m['role'] }}{{ m.missing }}|{{ m.list[-1] }}{{ m.list[1:3] }}{{ m.list[::-1] }}", ctx),
            "useruser|4[2, 3][4, 3, 2, 1]");
  EXPECT_EQ(render_j("{{ s[1:3] }}{{ s|length }}{{ s[::-1] }}", ctx), "él5olléh");
  EXPECT_EQ(render_j("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 1.5 * 2 }}"),
            "3 -4 1 2 3.5 2.0 1024 3.0");
  EXPECT_EQ(render_j("{{ 'a' ~ 1 ~ none }} {{ 'x' if false else 'y' }} {{ 'x' if false }}|{{ [1] + [2] }} {{ 'ab' * 2 }}"),
            "a1None y |[1, 2] abab");
  EXPECT_EQ(render_j("{{ 1 in [1, 2] }}{{ 'b' in 'abc' }}{{ 'k' in {'k': 1} }}{{ 3 not in [1] }}{{ not 0 }}"), "TrueTrueTrueTrueTrue");
  EXPECT_EQ(render_j("{{ 1 < 2 and 'a' < 'b' }}{{ 0 or 'dflt' }}{{ 1 == 1.0 }}{{ true == 1 }}"), "TruedfltTrueFalse");
  EXPECT_EQ(render_j("{{ {'a': [1, 'x', none, true]} }}{{ \"it's\" }}{{ ['it\\'s'] }}"), "{'a': [1, 'x', None, True]}it's[\"it's\"]");
  EXPECT_EQ(render_j("{{ '\\u00e9\\n'|length }}"), "2");
}

TEST(ChatJinja, FiltersTestsAndMethods) {
  OJson ctx = {{"msgs", {{{"role", "system"}, {"content", "S"}}, {{"role", "user"}, {"content", "U"}},
                         {{"role", "user"}, {"content", "V"}}}},
               {"d", {{"b", 2}, {"a", 1}}}};
  EXPECT_EQ(render_j("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}", ctx), "U,V");
  EXPECT_EQ(render_j("{{ msgs|rejectattr('role', 'eq', 'user')|list|length }}{{ msgs|map(attribute='role')|unique|list }}", ctx),
            "1['system', 'user']");
  EXPECT_EQ(render_j("{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ d|dictsort }}|{{ d|items|list }}", ctx),
            "{\"b\": 2, \"a\": 1}|{\n  \"b\": 2,\n  \"a\": 1\n}|[['a', 1], ['b', 2]]|[['b', 2], ['a', 1]]");
  EXPECT_EQ(render_j("{{ ' x '|trim }}|{{ 'ab'|upper }}{{ 'AB'|lower }}{{ 'hello world'|title }}{{ 'hELLO'|capitalize }}"),
            "x|ABabHello WorldHello");
  EXPECT_EQ(render_j("{{ '42'|int + 1 }}{{ 'x'|int }}{{ '2.5'|float }}{{ 3|string ~ 'a' }}{{ undefined_var|default('dv') }}{{ ''|d('e', true) }}"),
            "4302.53adve");
  EXPECT_EQ(render_j("{{ [3, 1, 2]|sort|first }}{{ [3, 1, 2]|last }}{{ 'a-b'|replace('-', '+') }}{{ [1, 2]|reverse|list }}{{ [1,2,3]|sum }}"),
            "12a+b[2, 1]6");
  EXPECT_EQ(render_j("{{ x is defined }}{{ none is none }}{{ 's' is string }}{{ 1 is number }}{{ {} is mapping }}{{ [] is sequence }}"
                  "{{ 's' is iterable }}{{ 3 is odd }}{{ 4 is divisibleby 2 }}{{ 2 is in [1, 2] }}{{ x is not defined }}"),
            "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(render_j("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a b  c'.split() }}|{{ 'a,b'.split(',') }}|"
                  "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aXa'.replace('a', 'b') }}|{{ d.get('z', 9) }}"
                  "{{ d.keys()|list }}{{ d.values()|list }}", ctx),
            "a b|a|['a', 'b', 'c']|['a', 'b']|TrueTrue|bXb|9['b', 'a'][2, 1]");
  EXPECT_EQ(render_j("{% filter upper %}ab{{ 'c' }}{% endfilter %}|{{ '{}-{1}-{x}{{'.format('a', 'b', x='c') }}|{{ none|selectattr('a')|list }}"),
            "ABC|a-b-c{|[]");
  EXPECT_EQ(render_j("{{ 'x'.rstrip() }}{{ '\\n y'.lstrip() }}{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}"), "xyABab");
  EXPECT_EQ(render_j("{{ strftime_now('%Y-%m-%d') }}{% if strftime_now is defined %}!{% endif %}"), "2024-07-26!");
  EXPECT_EQ(render_j("{{ {'s': 'a\"<é>\\n'}|tojson }}"), "{\"s\": \"a\\\"<é>\\n\"}");
  EXPECT_EQ(render_j("{{ 1.0|tojson }}{{ 1e20|tojson }}{{ 0.1|tojson }}{{ 100000000000000000.0 }}"), "1.01e+200.11e+17");
}

TEST(ChatJinja, ErrorsAreStatusesNotCrashes) {
  EXPECT_NE(render_j_error("{{ x "), "");
  EXPECT_NE(render_j_error("{% if x %}never closed"), "");
  EXPECT_NE(render_j_error("{% for x in y %}{% endif %}"), "");
  EXPECT_NE(render_j_error("{# open comment"), "");
  EXPECT_NE(render_j_error("{{ 'unterminated }}"), "");
  EXPECT_NE(render_j_error("{% frobnicate %}"), "");
  EXPECT_NE(render_j_error("{{ x | nosuchfilter }}").find("unknown filter 'nosuchfilter'"), std::string::npos);
  EXPECT_NE(render_j_error("{{ x is nosuchtest }}").find("unknown test"), std::string::npos);
  EXPECT_EQ(render_j_error("{{ raise_exception('Roles must alternate') }}"), "chat template: Roles must alternate");
  EXPECT_NE(render_j_error("{{ 1 / 0 }}"), "");
  EXPECT_NE(render_j_error("{{ undefined_thing() }}"), "");
  EXPECT_NE(render_j_error("{{ 'a' + 1 }}"), "");
  // Runaway templates hit limits instead of hanging or exhausting memory.
  EXPECT_NE(render_j_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").find("limit"),
            std::string::npos);
  EXPECT_NE(render_j_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("deep"), std::string::npos);
  EXPECT_NE(render_j_error("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"),
            "");
  std::string deep = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_NE(render_j_error("{{ " + deep + " }}").find("nested too deeply"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Go template features.

TEST(ChatGoTemplate, FieldsTrimmingAndConditionals) {
  OJson d = {{"System", "sys"}, {"Prompt", "hi"}, {"Flag", false}, {"N", 3}, {"Nested", {{"Inner", "deep"}}}};
  EXPECT_EQ(render_go("{{ .System }}|{{ .Nested.Inner }}|{{ .Missing }}|{{ .Missing.Deeper }}|{{ .N }}|{{ .Flag }}", d),
            "sys|deep|||3|false");
  EXPECT_EQ(render_go("a  \n {{- .Prompt -}} \n  b", d), "ahib");
  EXPECT_EQ(render_go("a {{ .Prompt }} b", d), "a hi b");
  EXPECT_EQ(render_go("{{ if .Flag }}x{{ else if eq .N 3 }}three{{ else }}other{{ end }}", d), "three");
  EXPECT_EQ(render_go("{{ if .Missing }}x{{ else if .Flag }}y{{ else }}z{{ end }}", d), "z");
  EXPECT_EQ(render_go("{{ with .Nested }}{{ .Inner }}{{ end }}{{ with .Missing }}x{{ else }}none{{ end }}", d), "deepnone");
  EXPECT_EQ(render_go("{{/* a comment */}}x{{- /* trimmed */ -}}  y", d), "xy");
  EXPECT_EQ(render_go("{{ . }}", OJson("dot")), "dot");
}

TEST(ChatGoTemplate, RangeVariablesAndFunctions) {
  OJson d = {{"Messages", {{{"Role", "user"}, {"Content", "a"}}, {{"Role", "assistant"}, {"Content", "b"}},
                           {{"Role", "user"}, {"Content", "c"}}}}};
  EXPECT_EQ(render_go("{{ range $i, $m := .Messages }}{{ $i }}:{{ $m.Role }}={{ .Content }};{{ end }}", d), "0:user=a;1:assistant=b;2:user=c;");
  EXPECT_EQ(render_go("{{ range .Messages }}{{ if eq .Role \"assistant\" }}{{ continue }}{{ end }}{{ .Content }}{{ end }}", d), "ac");
  EXPECT_EQ(render_go("{{ range .Messages }}{{ if eq .Role \"assistant\" }}{{ break }}{{ end }}{{ .Content }}{{ end }}", d), "a");
  EXPECT_EQ(render_go("{{ range .Nothing }}x{{ else }}empty{{ end }}", d), "empty");
  EXPECT_EQ(render_go("{{ $n := 0 }}{{ range .Messages }}{{ $n = len $.Messages }}{{ end }}{{ $n }}", d), "3");
  EXPECT_EQ(render_go("{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}{{ if $last }}{{ .Content }}{{ end }}{{ end }}", d),
            "c");
  EXPECT_EQ(render_go("{{ (index .Messages 1).Content }}{{ index .Messages 2 \"Content\" }}{{ len \"héllo\" }}{{ slice \"abcdef\" 1 3 }}", d),
            "bc6bc");
  EXPECT_EQ(render_go("{{ and 1 0 }}{{ or 0 \"x\" }}{{ not true }}{{ eq 1 2 3 1 }}{{ ne \"a\" \"b\" }}{{ lt 1 2 }}{{ ge 2 3 }}", d),
            "0xfalsetruetruetruefalse");
  EXPECT_EQ(render_go("{{ printf \"%s-%d-%v-%q\" \"a\" 5 true \"q\" }}{{ \"x\" | printf \"<%s>\" }}{{ print 1 2 }}", d), "a-5-true-\"q\"<x>1 2");
  EXPECT_EQ(render_go("{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", {{"M", {{"b", 1}, {"a", 2}}}}), "a=2;b=1;");  // maps in key order
  EXPECT_EQ(render_go("{{ currentDate }}"), "2024-07-26");
  EXPECT_EQ(render_go("{{ range 3 }}{{ . }}{{ end }}"), "012");
}

TEST(ChatGoTemplate, JsonOfToolsSortedAndEscaped) {
  nlohmann::json tools = nlohmann::json::parse(R"([{"function":{"parameters":{"properties":{"q":{"type":"string","description":"a <b> & c"}},
    "required":["q"],"type":"object"},"description":"Search <web>","name":"search"},"type":"function"}])");
  OJson data = {{"Tools", canonical_tools(tools)},
                {"Args", {{"z", 1}, {"a", "x&y"}}}};
  // Struct order for tools (type, function{name, description, parameters{type, required, properties}}).
  const std::string tool_json =
      R"({"type":"function","function":{"name":"search","description":"Search \u003cweb\u003e","parameters":{"type":"object","required":["q"],"properties":{"q":{"type":"string","description":"a \u003cb\u003e \u0026 c"}}}}})";
  EXPECT_EQ(render_go("{{ range .Tools }}{{ . }}{{ end }}", data), tool_json);
  EXPECT_EQ(render_go("{{ range .Tools }}{{ json . }}{{ end }}", data), tool_json);
  EXPECT_EQ(render_go("{{ range .Tools }}{{ .Function.Name }}:{{ .Function.Parameters.Required }}{{ end }}", data), "search:[q]");
  EXPECT_EQ(render_go("{{ json .Args }}", OJson{{"Args", OJson::parse(nlohmann::json{{"z", 1}, {"a", "x&y"}}.dump())}}),
            R"({"a":"x\u0026y","z":1})");
  EXPECT_EQ(render_go("{{ json 1.5 }}{{ json \"\\n\" }}{{ json nil }}"), "1.5\"\\n\"null");
}

TEST(ChatGoTemplate, ErrorsAreStatuses) {
  EXPECT_NE(render_go_error("{{ .System "), "");
  EXPECT_NE(render_go_error("{{ if .X }}no end"), "");
  EXPECT_NE(render_go_error("{{ end }}"), "");
  EXPECT_NE(render_go_error("{{ nosuchfunc .X }}").find("not defined"), std::string::npos);
  EXPECT_NE(render_go_error("{{ \"unterminated }}"), "");
  EXPECT_NE(render_go_error("{{ $undeclared }}"), "");
  EXPECT_NE(render_go_error("{{ index .L 5 }}", {{"L", {1}}}), "");
  EXPECT_NE(render_go_error("{{ range 100000000 }}{{ end }}"), "");
  EXPECT_NE(render_go_error("{{ range $i := 1000 }}{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}{{ end }}").find("limit"), std::string::npos);
  EXPECT_NE(render_go_error("{{ define \"x\" }}{{ end }}"), "");
}

// ---------------------------------------------------------------------------------------------
// render_chat with Ollama-style Go TEMPLATE layers.

namespace {

TemplateSource go_source(const std::string& file) {
  TemplateSource t;
  t.go_template = read_file(data_path("go/" + file));
  return t;
}

const Message kSys = msg("system", "You are a terse assistant.");
const Message kU1 = msg("user", "Hello! What's 2+2?");
const Message kA1 = msg("assistant", "4.");
const Message kU2 = msg("user", "And the capital of France?");

nlohmann::json weather_tools() {
  return nlohmann::json::parse(R"([{"type":"function","function":{"name":"get_weather",
    "description":"Get the current weather for a city <name> & country","parameters":{"type":"object",
    "required":["location"],"properties":{"location":{"type":"string","description":"City, e.g. Paris"}}}}}])");
}
Message weather_call() {
  Message m = msg("assistant", "");
  m.tool_calls = nlohmann::json::parse(R"([{"function":{"name":"get_weather","arguments":{"unit":"celsius","location":"Paris"}}}])");
  return m;
}
Message weather_result() {
  Message m = msg("tool", "{\"temperature\": 21}");
  m.tool_name = "get_weather";
  return m;
}

std::string chat(const TemplateSource& t, const std::vector<Message>& msgs, const PromptOptions& o = {}) {
  auto r = render_chat(t, msgs, o);
  return r.ok() ? *r : "ERROR: " + r.error();
}

// Jinja reference render for one template/case, for cross-checking Go templates.
std::string jinja_expected(const std::string& tmpl, const std::string& kase) {
  OJson ref = OJson::parse(read_file(data_path("jinja_ref.json")));
  for (const auto& c : ref["cases"])
    if (c["template"] == tmpl && c["case"] == kase) return c.value("expected", "");
  return "<missing>";
}

}  // namespace

TEST(ChatGoFamilies, ChatmlMatchesQwenJinjaWhenSystemGiven) {
  TemplateSource t = go_source("chatml.gotmpl");
  EXPECT_EQ(chat(t, {kSys, kU1}), jinja_expected("Qwen-Qwen2.5-7B-Instruct", "sys_user"));
  EXPECT_EQ(chat(t, {kSys, kU1, kA1, kU2}), jinja_expected("Qwen-Qwen2.5-7B-Instruct", "multi_turn"));
  EXPECT_EQ(chat(t, {kU1}), "<|im_start|>user\nHello! What's 2+2?<|im_end|>\n<|im_start|>assistant\n");
  // Consecutive same-role messages merge with a blank line; system messages are joined into .System.
  EXPECT_EQ(chat(t, {kSys, msg("system", "Be kind."), kU1, msg("user", "More?")}),
            "<|im_start|>system\nYou are a terse assistant.\n\nBe kind.<|im_end|>\n"
            "<|im_start|>user\nHello! What's 2+2?\n\nMore?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatGoFamilies, ChatmlTools) {
  TemplateSource t = go_source("chatml.gotmpl");
  PromptOptions o;
  o.tools = weather_tools();
  std::string got = chat(t, {msg("user", "Weather in Paris?"), weather_call(), weather_result()}, o);
  std::string want =
      "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
      R"({"type":"function","function":{"name":"get_weather","description":"Get the current weather for a city \u003cname\u003e \u0026 country","parameters":{"type":"object","required":["location"],"properties":{"location":{"type":"string","description":"City, e.g. Paris"}}}}})"
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
      "</tool_call><|im_end|>\n"
      "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
      "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\":\"Paris\",\"unit\":\"celsius\"}}\n"
      "</tool_call><|im_end|>\n"
      "<|im_start|>user\n<tool_response>\n{\"temperature\": 21}\n</tool_response><|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(got, want);
}

TEST(ChatGoFamilies, Llama3Instruct) {
  TemplateSource t = go_source("llama3-instruct.gotmpl");
  EXPECT_EQ(chat(t, {kSys, kU1, kA1, kU2}),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
            "You are a terse assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello! What's 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnd the capital of France?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  PromptOptions o;
  o.tools = weather_tools();
  EXPECT_EQ(chat(t, {msg("user", "Weather in Paris?"), weather_call(), weather_result()}, o),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n\n\n"
            "When you receive a tool call response, use the output to format an answer to the original user question.\n\n"
            "You are a helpful assistant with tool calling capabilities.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a "
            "function call with its proper arguments that best answers the given prompt.\n\n"
            "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}. "
            "Do not use variables.\n\n"
            R"({"type":"function","function":{"name":"get_weather","description":"Get the current weather for a city \u003cname\u003e \u0026 country","parameters":{"type":"object","required":["location"],"properties":{"location":{"type":"string","description":"City, e.g. Paris"}}}}})"
            "\n\nWeather in Paris?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": "
            "{\"location\":\"Paris\",\"unit\":\"celsius\"}}<|eot_id|>"
            "<|start_header_id|>ipython<|end_header_id|>\n\n{\"temperature\": 21}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatGoFamilies, Gemma3MatchesJinjaWithoutBos) {
  TemplateSource t = go_source("gemma3-instruct.gotmpl");
  auto strip_bos = [](std::string s) { return s.rfind("<bos>", 0) == 0 ? s.substr(5) : s; };
  EXPECT_EQ(chat(t, {kSys, kU1}), strip_bos(jinja_expected("google-gemma-3-it", "sys_user")));
  EXPECT_EQ(chat(t, {kU1}), strip_bos(jinja_expected("google-gemma-3-it", "user_only")));
  EXPECT_EQ(chat(t, {kSys, kU1, kA1, kU2}), strip_bos(jinja_expected("google-gemma-3-it", "multi_turn")));
  EXPECT_EQ(chat(t, {kU1, kA1, kU2}), strip_bos(jinja_expected("google-gemma-3-it", "multi_no_system")));
  EXPECT_FALSE(template_caps(t).tools);
}

TEST(ChatGoFamilies, ThinkingFlags) {
  TemplateSource t = go_source("qwen3-think.gotmpl");
  Message a = kA1;
  a.thinking = "2+2 is 4.";
  PromptOptions on, off, unset;
  on.think = true;
  off.think = false;
  EXPECT_EQ(chat(t, {kU1, a, kU2}, on),
            "<|im_start|>user\nHello! What's 2+2?<|im_end|>\n<|im_start|>assistant\n<think>2+2 is 4.</think>4.<|im_end|>\n"
            "<|im_start|>user\nAnd the capital of France? /think<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat(t, {kU1, a, kU2}, off),
            "<|im_start|>user\nHello! What's 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n"
            "<|im_start|>user\nAnd the capital of France? /no_think<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(chat(t, {kU1}, unset), "<|im_start|>user\nHello! What's 2+2?<|im_end|>\n<|im_start|>assistant\n");
  TemplateCaps caps = template_caps(t);
  EXPECT_TRUE(caps.thinking);
  EXPECT_FALSE(caps.tools);
  TemplateTags tags = template_tags(t);
  EXPECT_EQ(tags.think_open, "<think>");
  EXPECT_EQ(tags.think_close, "</think>");
}

TEST(ChatGoFamilies, LegacyPromptResponseTemplate) {
  TemplateSource t = go_source("chatml-legacy.gotmpl");
  // Rendered once per user turn; the last rendering stops right after {{ .Response }}.
  EXPECT_EQ(chat(t, {kSys, kU1, kA1, kU2}),
            "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n<|im_start|>user\nHello! What's 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4.<|im_end|>\n"
            "<|im_start|>user\nAnd the capital of France?<|im_end|>\n<|im_start|>assistant\n");
  // A trailing assistant message is a prefill: the prompt ends inside that reply.
  EXPECT_EQ(chat(t, {kU1, msg("assistant", "The answer is")}),
            "<|im_start|>user\nHello! What's 2+2?<|im_end|>\n<|im_start|>assistant\nThe answer is");
  auto gen = render_generate(t, "sys", "hi", "", {});
  ASSERT_TRUE(gen.ok()) << gen.error();
  EXPECT_EQ(*gen, "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatGoFamilies, DefaultTemplateAndFillInTheMiddle) {
  // No template at all: Ollama's `{{ .Prompt }}` pass-through (plus the appended {{ .Response }}).
  EXPECT_EQ(chat(TemplateSource{}, {kSys, kU1, kA1, kU2}), "Hello! What's 2+2?4.And the capital of France?");
  TemplateSource fim = go_source("fim.gotmpl");
  auto r = render_generate(fim, "", "def f(", "):\n  pass", {});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(*r, "<|fim_prefix|>def f(<|fim_suffix|>):\n  pass<|fim_middle|>");
  EXPECT_TRUE(template_caps(fim).insert);
  EXPECT_FALSE(render_generate(go_source("chatml.gotmpl"), "", "a", "b", {}).ok());  // no .Suffix: no insert
  TemplateSource j;
  j.jinja_template = "{{ messages[0].content }}";
  EXPECT_FALSE(render_generate(j, "", "a", "b", {}).ok());
}

TEST(ChatGoFamilies, CapabilitiesAndTags) {
  TemplateCaps c = template_caps(go_source("chatml.gotmpl"));
  EXPECT_TRUE(c.tools);
  EXPECT_FALSE(c.thinking);
  EXPECT_FALSE(c.insert);
  EXPECT_EQ(template_tags(go_source("chatml.gotmpl")).tool_call, "<tool_call>");
  EXPECT_EQ(template_tags(go_source("llama3-instruct.gotmpl")).tool_call, "{");
  EXPECT_EQ(template_tags(go_source("gemma3-instruct.gotmpl")).tool_call, "");
  TemplateSource qwen3;
  qwen3.jinja_template = read_file(data_path("templates/Qwen-Qwen3-0.6B.jinja"));
  EXPECT_TRUE(template_caps(qwen3).tools);
  EXPECT_TRUE(template_caps(qwen3).thinking);
  TemplateSource gemma;
  gemma.jinja_template = read_file(data_path("templates/google-gemma-3-it.jinja"));
  EXPECT_FALSE(template_caps(gemma).tools);
  EXPECT_FALSE(template_caps(gemma).thinking);
  // A broken template reports errors through render_chat, and no capabilities.
  TemplateSource bad;
  bad.go_template = "{{ if .Messages }}";
  EXPECT_FALSE(render_chat(bad, {kU1}, {}).ok());
  EXPECT_FALSE(template_caps(bad).tools);
  bad.go_template.clear();
  bad.jinja_template = "{% for m in messages %}";
  EXPECT_FALSE(render_chat(bad, {kU1}, {}).ok());
}

TEST(ChatPrompt, LongConversationsRenderInLinearishTime) {
  // Templates index messages[i] and take messages|length inside loops; those must not copy the
  // whole conversation each time (2000 turns would then take minutes, not milliseconds).
  std::vector<Message> msgs;
  for (int i = 0; i < 2000; ++i) msgs.push_back(msg(i % 2 ? "assistant" : "user", std::string(100, 'a' + i % 26)));
  TemplateSource qwen3;
  qwen3.jinja_template = read_file(data_path("templates/Qwen-Qwen3-0.6B.jinja"));
  auto j = render_chat(qwen3, msgs, {});
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_GT(j->size(), 2000u * 100u);
  for (const char* file : {"chatml.gotmpl", "qwen3-think.gotmpl", "gemma3-instruct.gotmpl"}) {
    SCOPED_TRACE(file);
    // qwen3-think uses Ollama's `eq (len (slice $.Messages $i)) 1` last-message idiom.
    auto g = render_chat(go_source(file), msgs, {});
    ASSERT_TRUE(g.ok()) << g.error();
    EXPECT_GT(g->size(), 2000u * 100u);
  }
}
