// Reading model replies (engine/chat/reply.h, tool_calls.h): per-family tool-call syntax chosen
// from real templates (tests/data/chat), canned model outputs for every family including
// malformed and truncated ones, thinking splits, and streaming: every reply is also fed split
// at every byte boundary and one byte at a time, which must give the same result as one piece.
#include <gtest/gtest.h>

#include <set>

#include "chat_test_data.h"
#include "engine/chat/reply.h"

using namespace osprey::chat;
using OJson = nlohmann::ordered_json;

namespace {

std::string chat_data(const std::string& rel) { return osprey::test::read_file(osprey::test::chat_data_path(rel)); }

TemplateSource jinja(const std::string& name) {
  TemplateSource t;
  t.jinja_template = chat_data("templates/" + name + ".jinja");
  EXPECT_FALSE(t.jinja_template.empty()) << name;
  return t;
}
TemplateSource go(const std::string& name) {
  TemplateSource t;
  t.go_template = chat_data("go/" + name + ".gotmpl");
  EXPECT_FALSE(t.go_template.empty()) << name;
  return t;
}

const nlohmann::json kTools = nlohmann::json::parse(R"([
  {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}},
  {"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}}}])");

// What a whole reply reads as: the concatenated thinking and content, and the calls printed
// as "index:name(arguments)" (ids are random, checked separately).
struct Parsed {
  std::string thinking, content;
  std::vector<std::string> calls;
  bool operator==(const Parsed& o) const { return thinking == o.thinking && content == o.content && calls == o.calls; }
};
std::ostream& operator<<(std::ostream& os, const Parsed& p) {
  os << "thinking=[" << p.thinking << "] content=[" << p.content << "] calls=[";
  for (const auto& c : p.calls) os << c << ";";
  return os << "]";
}

void absorb(const ReplyDelta& d, Parsed* p) {
  p->thinking += d.thinking;
  p->content += d.content;
  for (const auto& c : d.calls) {
    EXPECT_EQ(c.id.size(), 13u);
    EXPECT_EQ(c.id.rfind("call_", 0), 0u);
    p->calls.push_back(std::to_string(c.index) + ":" + c.name + c.arguments.dump());
  }
}

Parsed parse_pieces(const ReplyFormat& f, const std::vector<std::string>& pieces) {
  ReplyParser r(f);
  Parsed p;
  for (const auto& s : pieces) absorb(r.feed(s), &p);
  absorb(r.finish(), &p);
  return p;
}

// Parses `text` whole, then split at every byte boundary and byte by byte; all must agree.
Parsed parse_all_ways(const ReplyFormat& f, const std::string& text) {
  const Parsed whole = parse_pieces(f, {text});
  for (size_t i = 1; i < text.size(); ++i)
    EXPECT_EQ(parse_pieces(f, {text.substr(0, i), text.substr(i)}), whole) << "split at " << i << " of " << text;
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_pieces(f, bytes), whole) << "byte by byte: " << text;
  return whole;
}

ReplyFormat tools_of(const TemplateSource& t) { return reply_format(t, "", false, kTools); }

Parsed content(const std::string& s) { return {"", s, {}}; }
Parsed called(std::vector<std::string> calls, const std::string& content = "") { return {"", content, std::move(calls)}; }

}  // namespace

TEST(ToolCallSyntax, ChosenFromRealTemplates) {
  EXPECT_EQ(tool_call_syntax(jinja("Qwen-Qwen2.5-Coder-0.5B-Instruct")).format, ToolCallFormat::TAGGED);
  EXPECT_EQ(tool_call_syntax(jinja("Qwen-Qwen2.5-7B-Instruct")).open, "<tool_call>");
  EXPECT_EQ(tool_call_syntax(jinja("Qwen-Qwen3-0.6B")).close, "</tool_call>");
  EXPECT_EQ(tool_call_syntax(jinja("NousResearch-Hermes-3-Llama-3.1-8B-tool_use")).format, ToolCallFormat::TAGGED);
  EXPECT_EQ(tool_call_syntax(jinja("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use")).format, ToolCallFormat::TAGGED);
  EXPECT_EQ(tool_call_syntax(jinja("meta-llama-Llama-3.1-8B-Instruct")).format, ToolCallFormat::LLAMA3);
  EXPECT_EQ(tool_call_syntax(jinja("meta-llama-Llama-3.2-3B-Instruct")).format, ToolCallFormat::LLAMA3);
  EXPECT_EQ(tool_call_syntax(jinja("mistralai-Mistral-Nemo-Instruct-2407")).format, ToolCallFormat::MISTRAL);
  EXPECT_EQ(tool_call_syntax(jinja("unsloth-mistral-Devstral-Small-2507")).format, ToolCallFormat::MISTRAL);
  EXPECT_EQ(tool_call_syntax(jinja("Mistral-Small-3.2-24B-Instruct-2506")).format, ToolCallFormat::MISTRAL);
  EXPECT_EQ(tool_call_syntax(jinja("ibm-granite-granite-3.3-2B-Instruct")).format, ToolCallFormat::JSON);
  // No tool section at all: nothing to parse (the server answers "does not support tools").
  EXPECT_EQ(tool_call_syntax(jinja("HuggingFaceTB-SmolLM2-135M-Instruct")).format, ToolCallFormat::NONE);
  EXPECT_EQ(tool_call_syntax(jinja("google-gemma-3-it")).format, ToolCallFormat::NONE);
  // Go templates: the literal tag inside {{ if .ToolCalls }}, "{" when there is none.
  const ToolCallSyntax chatml = tool_call_syntax(go("chatml"));
  EXPECT_EQ(chatml.format, ToolCallFormat::TAGGED);
  EXPECT_EQ(chatml.open, "<tool_call>");
  EXPECT_EQ(chatml.close, "</tool_call>");
  EXPECT_EQ(tool_call_syntax(go("llama3-instruct")).format, ToolCallFormat::JSON);
  EXPECT_EQ(tool_call_syntax(go("gemma3-instruct")).format, ToolCallFormat::NONE);
}

TEST(ToolCalls, QwenHermesTagged) {
  const ReplyFormat f = tools_of(jinja("Qwen-Qwen2.5-Coder-0.5B-Instruct"));
  EXPECT_EQ(parse_all_ways(f, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>"),
            called({"0:get_weather{\"location\":\"Paris\"}"}));
  // Parallel calls, arguments as a JSON string, key order kept as the model wrote it.
  EXPECT_EQ(parse_all_ways(f, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"b\": 2, \"a\": 1}}\n</tool_call>\n"
                              "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"location\\\": \\\"Oslo\\\"}\"}\n</tool_call>"),
            called({"0:add{\"b\":2,\"a\":1}", "1:get_weather{\"location\":\"Oslo\"}"}));
  // Text before the call streams as content; two objects inside one tag pair are two calls.
  EXPECT_EQ(parse_all_ways(f, "Let me check. <tool_call>{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2}}\n"
                              "{\"name\":\"add\",\"arguments\":{\"a\":3,\"b\":4}}</tool_call>"),
            called({"0:add{\"a\":1,\"b\":2}", "1:add{\"a\":3,\"b\":4}"}, "Let me check. "));
  // Text after a call stays content.
  EXPECT_EQ(parse_all_ways(f, "<tool_call>{\"name\":\"add\",\"arguments\":{}}</tool_call>\n\nDone."),
            called({"0:add{}"}, "Done."));
  // The closing tag is missing at the end of generation: a complete call still counts.
  EXPECT_EQ(parse_all_ways(f, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n"), called({"0:add{\"a\":1}"}));
  // Qwen2.5-Coder's habit: the call JSON in a ``` fence, or bare, opening the reply.
  EXPECT_EQ(parse_all_ways(f, "```json\n{\n  \"name\": \"get_weather\",\n  \"arguments\": {\n    \"location\": \"Paris\"\n  }\n}\n```"),
            called({"0:get_weather{\"location\":\"Paris\"}"}));
  EXPECT_EQ(parse_all_ways(f, "```\n{\"name\": \"add\", \"arguments\": {}}\n```\nDone."), called({"0:add{}"}, "Done."));
  EXPECT_EQ(parse_all_ways(f, "{\"name\": \"add\", \"arguments\": {}}"), called({"0:add{}"}));
  EXPECT_EQ(parse_all_ways(f, "```json\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}"), called({"0:add{\"a\":1}"}));
  for (const std::string code : {"```python\nprint(1)\n```", "```json\n{\"a\": 1}\n```", "{\"name\": \"nope\", \"arguments\": {}}",
                                 "```json\n{\"name\": \"add\", \"arguments\": {}}\nmore\n```", "``", "```js x\n{}"})
    EXPECT_EQ(parse_all_ways(f, code), content(code)) << code;
  // Fenced JSON later in the reply is prose, not a call.
  EXPECT_EQ(parse_all_ways(f, "Here:\n```json\n{\"name\": \"add\", \"arguments\": {}}\n```"),
            content("Here:\n```json\n{\"name\": \"add\", \"arguments\": {}}\n```"));
  // A `<` that is not the tag is content.
  EXPECT_EQ(parse_all_ways(f, "a <b> tag and <tool_cal"), content("a <b> tag and <tool_cal"));
}

TEST(ToolCalls, QwenHermesMalformedIsContent) {
  const ReplyFormat f = tools_of(jinja("Qwen-Qwen2.5-7B-Instruct"));
  for (const std::string bad : {
           "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Par",   // truncated
           "<tool_call>\nnot json at all\n</tool_call>",                                     // not JSON
           "<tool_call>{\"name\": \"launch_rockets\", \"arguments\": {}}</tool_call>",      // unknown tool
           "<tool_call>{\"arguments\": {\"a\": 1}}</tool_call>",                            // no name
           "<tool_call>{\"name\": \"add\", \"arguments\": [1, 2]}</tool_call>",             // arguments not an object
           "<tool_call>{\"name\": \"add\", \"arguments\": \"{broken\"}</tool_call>",        // arguments string not JSON
           "<tool_call>{\"name\": \"add\", \"arguments\": {}} trailing</tool_call>",        // junk inside the tags
           "<tool_call></tool_call>",                                                          // empty
           "<tool_call>",                                                                      // cut right after the tag
       })
    EXPECT_EQ(parse_all_ways(f, bad), content(bad)) << bad;
  // A bad block does not hide a good one after it.
  EXPECT_EQ(parse_all_ways(f, "<tool_call>oops</tool_call><tool_call>{\"name\":\"add\",\"arguments\":{}}</tool_call>"),
            called({"0:add{}"}, "<tool_call>oops</tool_call>"));
  // Deep nesting is refused, not recursed into.
  const std::string deep = "<tool_call>{\"name\":\"add\",\"arguments\":" + std::string(5000, '[') + "</tool_call>";
  EXPECT_EQ(parse_pieces(f, {deep}), content(deep));
}

TEST(ToolCalls, Llama3Json) {
  const ReplyFormat f = tools_of(jinja("meta-llama-Llama-3.1-8B-Instruct"));
  EXPECT_EQ(parse_all_ways(f, "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}"),
            called({"0:get_weather{\"location\":\"Paris\"}"}));
  EXPECT_EQ(parse_all_ways(f, "<|python_tag|>{\"type\": \"function\", \"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}"),
            called({"0:add{\"a\":1,\"b\":2}"}));
  // Several calls separated by ';' (Llama 3.2) or newlines.
  EXPECT_EQ(parse_all_ways(f, "{\"name\": \"add\", \"parameters\": {\"a\": 1}}; {\"name\": \"add\", \"parameters\": {\"a\": 2}}\n"
                              "{\"name\": \"get_weather\", \"parameters\": {}}"),
            called({"0:add{\"a\":1}", "1:add{\"a\":2}", "2:get_weather{}"}));
  // A call must open the reply; JSON later in prose is content.
  EXPECT_EQ(parse_all_ways(f, "Sure: {\"name\": \"add\", \"parameters\": {}}"), content("Sure: {\"name\": \"add\", \"parameters\": {}}"));
  // JSON that is not a call, truncated JSON, built-in tool syntax: content.
  for (const std::string bad : {"{\"answer\": 42}", "{\"name\": \"add\", \"parameters\": {\"a\": ",
                                "<|python_tag|>brave_search.call(query=\"x\")", "[]", "{\"name\": \"nope\", \"parameters\": {}}"})
    EXPECT_EQ(parse_all_ways(f, bad), content(bad)) << bad;
  // After the calls, other text is content.
  EXPECT_EQ(parse_all_ways(f, "{\"name\": \"add\", \"parameters\": {}} and then"), called({"0:add{}"}, "and then"));
}

TEST(ToolCalls, Mistral) {
  const ReplyFormat nemo = tools_of(jinja("mistralai-Mistral-Nemo-Instruct-2407"));
  EXPECT_EQ(parse_all_ways(nemo, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}, \"id\": \"a1b2c3d4e\"}, "
                                 "{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}]"),
            called({"0:get_weather{\"location\":\"Paris\"}", "1:add{\"a\":1,\"b\":2}"}));
  // v11+ (Mistral Small 3.2, Devstral): name[ARGS]{...}, optionally with [CALL_ID], repeated.
  const ReplyFormat small = tools_of(jinja("Mistral-Small-3.2-24B-Instruct-2506"));
  EXPECT_EQ(parse_all_ways(small, "[TOOL_CALLS]get_weather[ARGS]{\"location\": \"Paris\"}[TOOL_CALLS]add[CALL_ID]abc123xyz[ARGS]{\"a\": 5}"),
            called({"0:get_weather{\"location\":\"Paris\"}", "1:add{\"a\":5}"}));
  EXPECT_EQ(parse_all_ways(small, "Checking.[TOOL_CALLS]add[ARGS]{}"), called({"0:add{}"}, "Checking."));
  for (const std::string bad : {"[TOOL_CALLS]get weather[ARGS]{}", "[TOOL_CALLS]add[ARGS]{\"a\": ", "[TOOL_CALLS]add[ARGS]oops",
                                "[TOOL_CALLS][{\"name\": \"add\"", "[TOOL_CALLS]", "[TOOL_CALLS]add[ARG", "[TOOL_CALLS]nope[ARGS]{}"})
    EXPECT_EQ(parse_all_ways(small, bad), content(bad)) << bad;
}

TEST(ToolCalls, GenericJson) {
  const ReplyFormat f = tools_of(jinja("ibm-granite-granite-3.3-2B-Instruct"));
  EXPECT_EQ(parse_all_ways(f, "{\"name\": \"add\", \"arguments\": {\"a\": 1}}"), called({"0:add{\"a\":1}"}));
  EXPECT_EQ(parse_all_ways(f, "[{\"name\": \"add\", \"arguments\": {\"a\": 1}}, {\"name\": \"get_weather\", \"arguments\": {}}]"),
            called({"0:add{\"a\":1}", "1:get_weather{}"}));
  // llama.cpp's generic format, and OpenAI's own call shape.
  EXPECT_EQ(parse_all_ways(f, "{\"tool_calls\": [{\"name\": \"add\", \"arguments\": {\"b\": 2}}]}"), called({"0:add{\"b\":2}"}));
  EXPECT_EQ(parse_all_ways(f, "{\"tool_call\": {\"name\": \"add\", \"arguments\": {}}}"), called({"0:add{}"}));
  EXPECT_EQ(parse_all_ways(f, "{\"type\": \"function\", \"function\": {\"name\": \"add\", \"arguments\": \"{}\"}}"), called({"0:add{}"}));
  EXPECT_EQ(parse_all_ways(f, "Hello there."), content("Hello there."));
  EXPECT_EQ(parse_all_ways(f, "{\"response\": \"hi\"}"), content("{\"response\": \"hi\"}"));
  EXPECT_EQ(parse_all_ways(f, "  \n"), content("  \n"));
}

TEST(ToolCalls, ContentStreamsBeforeTheCallCompletes) {
  ToolCallParser p(tool_call_syntax(jinja("Qwen-Qwen3-0.6B")), {"add"});
  std::vector<ToolCall> calls;
  EXPECT_EQ(p.feed("Working on it", &calls), "Working on it");
  EXPECT_EQ(p.feed(" <tool", &calls), " ");  // a possible tag is held back
  EXPECT_EQ(p.feed("_call>{\"name\":\"add\",", &calls), "");
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(p.feed("\"arguments\":{}}</tool_call>", &calls), "");
  ASSERT_EQ(calls.size(), 1u);  // emitted as soon as it is complete, before the end
  EXPECT_EQ(p.feed("\n", &calls), "");
  EXPECT_EQ(p.finish(&calls), "");
  EXPECT_EQ(calls.size(), 1u);
  EXPECT_NE(calls[0].id, "");
}

TEST(ToolCalls, IdsAreDistinct) {
  ToolCallParser p(tool_call_syntax(jinja("Qwen-Qwen3-0.6B")), {});
  std::vector<ToolCall> calls;
  std::string text;
  for (int i = 0; i < 20; ++i) text += "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>";
  p.feed(text, &calls);
  p.finish(&calls);
  ASSERT_EQ(calls.size(), 20u);
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(calls[(size_t)i].index, i);
    ids.insert(calls[(size_t)i].id);
  }
  EXPECT_EQ(ids.size(), 20u);
}

TEST(Thinking, SplitsTheOpeningSection) {
  const ReplyFormat f = reply_format(jinja("Qwen-Qwen3-0.6B"), "<|im_start|>assistant\n", true, nullptr);
  ASSERT_EQ(f.think_open, "<think>");
  ASSERT_EQ(f.think_close, "</think>");
  EXPECT_FALSE(f.think_prefilled);
  EXPECT_EQ(parse_all_ways(f, "<think>\nThe user says hi.  So  I greet.\n</think>\n\nHello!"),
            (Parsed{"The user says hi.  So  I greet.", "Hello!", {}}));
  EXPECT_EQ(parse_all_ways(f, "Hello without thinking <think>x</think>"), content("Hello without thinking <think>x</think>"));
  EXPECT_EQ(parse_all_ways(f, "<think>\n\n</think>\n\nHi"), content("Hi"));
  // Cut off while thinking: all of it is thinking.
  EXPECT_EQ(parse_all_ways(f, "<think>still going"), (Parsed{"still going", "", {}}));
  EXPECT_EQ(parse_all_ways(f, "<thin"), content("<thin"));
  EXPECT_EQ(parse_all_ways(f, "  "), content("  "));
}

TEST(Thinking, PromptThatOpensTheSection) {
  const ReplyFormat f = reply_format(jinja("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"),
                                     "<｜Assistant｜><think>\n", true, nullptr);
  EXPECT_TRUE(f.think_prefilled);
  EXPECT_EQ(parse_all_ways(f, "Okay, 2+2.\n</think>\n\n4"), (Parsed{"Okay, 2+2.", "4", {}}));
}

TEST(Thinking, OffOrNotATemplateWithTags) {
  // think:false: the text is left as the model wrote it.
  EXPECT_EQ(parse_all_ways(reply_format(jinja("Qwen-Qwen3-0.6B"), "", false, nullptr), "<think>a</think>b"),
            content("<think>a</think>b"));
  EXPECT_EQ(parse_all_ways(reply_format(jinja("HuggingFaceTB-SmolLM2-135M-Instruct"), "", true, nullptr), "<think>a</think>b"),
            content("<think>a</think>b"));
  // Go templates name their own tags.
  const ReplyFormat g = reply_format(go("qwen3-think"), "", true, nullptr);
  EXPECT_EQ(g.think_open, "<think>");
  EXPECT_EQ(g.think_close, "</think>");
}

TEST(Reply, ThinkingThenToolCalls) {
  const ReplyFormat f = reply_format(jinja("Qwen-Qwen3-0.6B"), "", true, kTools);
  EXPECT_EQ(parse_all_ways(f, "<think>\nNeed the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", "
                              "\"arguments\": {\"location\": \"Rome\"}}\n</tool_call>"),
            (Parsed{"Need the weather.", "", {"0:get_weather{\"location\":\"Rome\"}"}}));
  // A tool tag inside the reasoning is reasoning, not a call.
  EXPECT_EQ(parse_all_ways(f, "<think>maybe <tool_call></think>ok"), (Parsed{"maybe <tool_call>", "ok", {}}));
}

TEST(Reply, JsonValueEnd) {
  bool deep = false;
  EXPECT_EQ(json_value_end(R"({"a":"}\"]"} x)", 0, &deep), 12u);
  EXPECT_EQ(json_value_end(R"([{"a":[1,2]}])", 0, &deep), 13u);
  EXPECT_EQ(json_value_end(R"({"a":)", 0, &deep), std::string_view::npos);
  EXPECT_FALSE(deep);
  EXPECT_EQ(json_value_end(std::string(100, '['), 0, &deep), std::string_view::npos);
  EXPECT_TRUE(deep);
}
