// The Jinja2 chat-template interpreter (trainer/text/jinja): real templates against Hugging
// Face's renderings in ../shared, then each statement, expression, filter, test and method,
// whitespace control, and errors. The expected strings of the feature tests are what
// Python's jinja2 3.1.6 renders in Hugging Face's environment (ImmutableSandboxedEnvironment,
// trim_blocks and lstrip_blocks on, HF's tojson) with the context of kContext().
#include "trainer/text/jinja/template.h"

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <string>

#include "tests/fixtures.h"
#include "trainer/core/error.h"

namespace flywheel {
namespace {

using nlohmann::ordered_json;
using testing::expect_user_error;

const ordered_json& kContext() {
  static const ordered_json context = ordered_json::parse(R"({
    "xs": [1, 2, 3],
    "d": {"a": 1, "b": 2},
    "s": "héllo",
    "n": null,
    "f": 1.5,
    "words": ["b", "A", "a", "C"],
    "msgs": [{"role": "system", "content": "sys"},
             {"role": "user", "content": "hi"},
             {"role": "assistant", "content": "yo"}]
  })");
  return context;
}

std::string render(const std::string& source) {
  return jinja::Template(source, "t").render(kContext());
}

std::string render_with(const std::string& source, bool trim_blocks, bool lstrip_blocks) {
  return jinja::Template(source, "t", {trim_blocks, lstrip_blocks}).render(kContext());
}

void expect_render_error(const std::string& source, const std::vector<std::string>& needles) {
  expect_user_error([&] { render(source); }, needles);
}

// ---- real chat templates ----

ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  return ordered_json::parse(in);
}

std::string token_text(const ordered_json& config, const char* key) {
  return config.contains(key) && config[key].is_string() ? config[key].get<std::string>() : "";
}

// What apply_chat_template passes: messages, add_generation_prompt, tools (when given) and the
// tokenizer's bos/eos tokens ("" when the config has none).
ordered_json chat_context(const ordered_json& config, const ordered_json& messages,
                          bool add_generation_prompt) {
  return {{"messages", messages},
          {"add_generation_prompt", add_generation_prompt},
          {"bos_token", token_text(config, "bos_token")},
          {"eos_token", token_text(config, "eos_token")}};
}

std::string shared_path(const std::string& relative) {
  return flywheel::testing::shared_dir() + "/" + relative;
}

jinja::Template chat_template(const ordered_json& config, const std::string& name) {
  return jinja::Template(config["chat_template"].get<std::string>(), name);
}

TEST(JinjaChatTemplate, RendersEveryFixtureCaseLikeHuggingFace) {
  const std::string cases_path = shared_path("fixtures/tokenizers/chat_cases.jsonl");
  FLYWHEEL_REQUIRE_PATH(cases_path);
  std::ifstream in(cases_path);
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const ordered_json c = ordered_json::parse(line);
    const std::string tokenizer = c["tokenizer"];
    const std::string config_path =
        shared_path("tokenizers/" + tokenizer + "/tokenizer_config.json");
    FLYWHEEL_REQUIRE_PATH(config_path);
    const ordered_json config = read_json(config_path);
    ordered_json context = chat_context(config, c["messages"], c["add_generation_prompt"]);
    if (c.contains("tools")) context["tools"] = c["tools"];
    EXPECT_EQ(chat_template(config, tokenizer).render(context),
              c["rendered_text"].get<std::string>())
        << tokenizer << " case " << checked << ": " << line.substr(0, 200);
    ++checked;
  }
  EXPECT_EQ(checked, 36);
}

// Mistral v0.3's template: the system message joins the last user turn; selectattr, a
// namespace counter, `messages[1:]`, and a trimmed assistant turn.
TEST(JinjaChatTemplate, MistralV03PutsTheSystemMessageInTheLastUserTurn) {
  const std::string path = shared_path("tokenizers/mistral-v0.3/tokenizer_config.json");
  FLYWHEEL_REQUIRE_PATH(path);
  const ordered_json config = read_json(path);
  const ordered_json messages = ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": " Hello! "},
    {"role": "user", "content": "Bye"}])");
  EXPECT_EQ(chat_template(config, "mistral").render(chat_context(config, messages, false)),
            "<s>[INST] Hi[/INST] Hello!</s>[INST] You are terse.\n\nBye[/INST]");
}

// The tool paths: `tool.items()` filtered by `if key != "return"`, tojson of the schema,
// `out[:-1]` to splice the call id into the call's JSON, and the tool result turn.
TEST(JinjaChatTemplate, MistralV03RendersToolsAndToolCalls) {
  const std::string path = shared_path("tokenizers/mistral-v0.3/tokenizer_config.json");
  FLYWHEEL_REQUIRE_PATH(path);
  const ordered_json config = read_json(path);
  ordered_json context = chat_context(config, ordered_json::parse(R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"id": "abc123XYZ", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "tool_call_id": "abc123XYZ", "content": "22C"},
    {"role": "assistant", "content": "It is 22C."},
    {"role": "user", "content": "Thanks"}])"),
                                      false);
  context["tools"] = ordered_json::parse(R"([{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
    "return": {"type": "string"}}}])");
  EXPECT_EQ(chat_template(config, "mistral").render(context),
            "<s>[INST] Weather in Paris?[/INST]"
            "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, "
            "\"id\": \"abc123XYZ\"}]</s>"
            "[TOOL_RESULTS] {\"content\": 22C, \"call_id\": \"abc123XYZ\"}[/TOOL_RESULTS]"
            " It is 22C.</s>"
            "[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
            "\"description\": \"Weather in a city\", \"parameters\": {\"type\": \"object\", "
            "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}]"
            "[/AVAILABLE_TOOLS][INST] Thanks[/INST]");
}

TEST(JinjaChatTemplate, MistralV03RaisesOnRolesThatDoNotAlternate) {
  const std::string path = shared_path("tokenizers/mistral-v0.3/tokenizer_config.json");
  FLYWHEEL_REQUIRE_PATH(path);
  const ordered_json config = read_json(path);
  const ordered_json messages = ordered_json::parse(
      R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  // raise_exception is on line 18 of the template.
  expect_user_error(
      [&] { chat_template(config, "mistral").render(chat_context(config, messages, false)); },
      {"mistral:18: ",
       "After the optional system message, conversation roles must "
       "alternate user/assistant/user/assistant/..."});
}

// Extra keywords reach the template as variables: Qwen3's enable_thinking=false.
TEST(JinjaChatTemplate, Qwen3HonoursEnableThinking) {
  const std::string path = shared_path("tokenizers/qwen3/tokenizer_config.json");
  FLYWHEEL_REQUIRE_PATH(path);
  const ordered_json config = read_json(path);
  ordered_json context =
      chat_context(config, ordered_json::parse(R"([{"role": "user", "content": "2+2?"}])"), true);
  context["enable_thinking"] = false;
  EXPECT_EQ(chat_template(config, "qwen3").render(context),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

// ---- whitespace control ----

TEST(JinjaWhitespace, TrimsAndLstripsBlocksAsHuggingFaceConfiguresJinja) {
  // trim_blocks drops the newline after a block tag or comment; lstrip_blocks the indentation
  // before one, but not before {{ }}.
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n"), "  x\n");
  EXPECT_EQ(render("a\n  {{ 1 }}\n  {# c #}\nb"), "a\n  1\nb");
  EXPECT_EQ(render("{% for x in xs %}\n  {{ x }}\n{% endfor %}\n"), "  1\n  2\n  3\n");
  EXPECT_EQ(render(" \t{% if 1 %}x{% endif %}"), "x");
  // Only indentation that starts a line goes.
  EXPECT_EQ(render("a  {% if true %}b{% endif %}"), "a  b");
}

TEST(JinjaWhitespace, KeepsEverythingWithTrimAndLstripOff) {
  EXPECT_EQ(render_with("  {% if true %}\n  x\n  {% endif %}\n", false, false), "  \n  x\n  ");
  EXPECT_EQ(render_with("a\n  {{ 1 }}\n  {# c #}\nb", false, false), "a\n  1\n  \nb");
  EXPECT_EQ(render_with("  {% if true %}\n  x\n  {% endif %}\n", true, false), "    x\n  ");
  EXPECT_EQ(render_with("  {% if true %}\n  x\n  {% endif %}\n", false, true), "\n  x\n");
}

TEST(JinjaWhitespace, MinusMarkersStripAllWhitespaceIncludingNewlines) {
  EXPECT_EQ(render("a \n {%- if true -%} \n b \n {%- endif %}\n"), "ab");
  EXPECT_EQ(render("x\n\t {%- if 1 %}y{% endif %}"), "xy");
  EXPECT_EQ(render("{{ 1 -}}\n  {{- 2 }}"), "12");
  EXPECT_EQ(render("a\n  {#- c -#}\n  b"), "ab");
}

TEST(JinjaWhitespace, PlusMarkersKeepWhatTrimAndLstripWouldRemove) {
  EXPECT_EQ(render("  {%+ if true %}\nx{%+ endif +%}\ny"), "  x\ny");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
}

TEST(JinjaWhitespace, NormalizesNewlinesAndDropsOneTrailingNewline) {
  EXPECT_EQ(render("a\r\nb\r{% if 1 %}\r\nc{% endif %}\r\n"), "a\nb\nc");
  EXPECT_EQ(render("x\n\n"), "x\n");
}

TEST(JinjaWhitespace, RawBlocksKeepTheirBody) {
  EXPECT_EQ(render("{% raw %}{{ not }}{% if %}{% endraw %}"), "{{ not }}{% if %}");
  EXPECT_EQ(render("{% raw %}\n  {% x %}\n  {% endraw %}\nz"), "\n  {% x %}\nz");
}

// ---- statements ----

TEST(JinjaStatements, IfElifElse) {
  EXPECT_EQ(render("{% if n %}a{% elif xs|length > 2 %}b{% else %}c{% endif %}"), "b");
  EXPECT_EQ(render("{% if false %}a{% elif false %}b{% else %}c{% endif %}"), "c");
  EXPECT_EQ(render("{% if s %}{{ s }}{% endif %}"), "héllo");
}

TEST(JinjaStatements, ForLoopsWithElseFilterAndUnpacking) {
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in undefined_list %}a{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(render("{% for x in xs if x > 5 %}a{% else %}filtered{% endfor %}"), "filtered");
  EXPECT_EQ(render("{% for k, v in d.items() if v > 1 %}{{ k }}{{ loop.index }}/{{ loop.length "
                   "}}{% endfor %}"),
            "b1/1");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}"), "1234");
  EXPECT_EQ(render("{% for (a, b) in [(1, 2)] %}{{ a + b }}{% endfor %}"), "3");
  EXPECT_EQ(render("{% for c in s %}[{{ c }}]{% endfor %}"), "[h][é][l][l][o]");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}"), "ab");
}

TEST(JinjaStatements, LoopVariables) {
  EXPECT_EQ(
      render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
             "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"),
      "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.previtem }},{{ loop.nextitem }};{% endfor %}"),
            ",2;1,3;2,;");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.cycle('a', 'b') }}{% if loop.changed(x > 1) %}C{% "
                   "endif %}{% endfor %}"),
            "aCbCa");
  EXPECT_EQ(render("{% for x in xs %}{% for y in xs %}{{ loop.index }}{% endfor %}{{ loop.index "
                   "}};{% endfor %}"),
            "1231;1232;1233;");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(render("{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}"
                   "{% if x == 3 %}{% break %}{% endif %}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for x in xs %}{{ x }}{% if loop.first %}{% break %}{% endif %}{% endfor %}"),
            "1");
}

TEST(JinjaStatements, SetForms) {
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}"), "12(1, 2)");
  EXPECT_EQ(render("{% set x %}a{{ 1 }}b{% endset %}{{ x }}"), "a1b");
  EXPECT_EQ(render("{% set y | upper %}up{% endset %}{{ y }}"), "UP");
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{{ ns.a }}"), "2");
}

// Jinja2 scoping: a loop iteration is a scope of its own, so state crosses iterations only in
// a namespace; an if body is not.
TEST(JinjaStatements, SetInsideForDoesNotLeakButNamespaceDoes) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = i + 5 %}{{ x }}{% endfor "
                   "%}{{ x }}"),
            "16171");
  EXPECT_EQ(render("{% for i in [1, 2] %}{{ y }}{% set y = i %}{% endfor %}{{ y }}"), "");
  EXPECT_EQ(
      render("{% set ns = namespace(total=0) %}{% for x in xs %}{% set ns.total = ns.total + x %}"
             "{% endfor %}{{ ns.total }}"),
      "6");
  EXPECT_EQ(render("{% if true %}{% set z = 3 %}{% endif %}{{ z }}"), "3");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(render("{% macro m(a, b=2) %}{{ a }}-{{ b }}-{{ varargs }}-{{ kwargs }}{% endmacro %}"
                   "{{ m(1) }}|{{ m(1, 3, 4, z=5) }}|{{ m(b=1, a=0) }}|{{ m() }}"),
            "1-2-()-{}|1-3-(4,)-{'z': 5}|0-1-()-{}|-2-()-{}");
  // Defaults are evaluated at call time and see earlier parameters; macros see the variables
  // of their template as they are when called.
  EXPECT_EQ(render("{% macro m(a, b=a*2) %}{{ b }}{% endmacro %}{{ m(3) }}"), "6");
  EXPECT_EQ(render("{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }}"),
            "2");
  EXPECT_EQ(
      render(
          "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"),
      "54321");
}

TEST(JinjaStatements, CallFilterWithAndGenerationBlocks) {
  EXPECT_EQ(
      render(
          "{% macro m(a) %}[{{ caller() }}|{{ a }}]{% endmacro %}{% call m(1) %}body{% endcall %}"),
      "[body|1]");
  EXPECT_EQ(render("{% macro m() %}{{ caller(1, 2) }}{% endmacro %}{% call(x, y) m() %}{{ x + y "
                   "}}{% endcall %}"),
            "3");
  EXPECT_EQ(render("{% filter upper %}abc{{ 'd' }}{% endfilter %}"), "ABCD");
  EXPECT_EQ(render("{% filter replace('a', 'b')|upper %}aa{% endfilter %}"), "BB");
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}"), "3");
  EXPECT_EQ(render("{% generation %}gen{{ 1 }}{% endgeneration %}"), "gen1");
  EXPECT_EQ(render("{# comment #}a{# two\nlines #}b"), "ab");
}

// ---- expressions ----

TEST(JinjaExpressions, PythonArithmeticAndNumberFormatting) {
  EXPECT_EQ(render("{{ 1/2 }}|{{ 4/2 }}|{{ 7//2 }}|{{ -7//2 }}|{{ -7 % 3 }}|{{ 7 % -3 }}"),
            "0.5|2.0|3|-4|2|-2");
  EXPECT_EQ(render("{{ 7.5 // 2 }}|{{ -7.5 % 2 }}|{{ 2 ** -1 }}|{{ 2 ** 10 }}|{{ 2 ** 0.5 }}"),
            "3.0|0.5|0.5|1024|1.4142135623730951");
  EXPECT_EQ(
      render("{{ 1e16 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 1.0 }} {{ 1e15 }} {{ 0.0001 }} {{ -0.0 }}"),
      "1e+16 1e-05 0.30000000000000004 1.0 1000000000000000.0 0.0001 -0.0");
  EXPECT_EQ(render("{{ 2 * 3 + 4 }}{{ 2 + 3 * 4 }}{{ (2 + 3) * 4 }}{{ 10 - 2 - 3 }}"), "1014205");
  // Jinja2, unlike Python, binds unary minus tighter than ** and reads ** left to right.
  EXPECT_EQ(render("{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}"), "4|64");
  EXPECT_EQ(render("{{ true + 1 }}{{ 1.5 + 1 }}{{ 0b101 }}{{ 0xff }}{{ 1_000 }}"), "22.552551000");
}

TEST(JinjaExpressions, StringsListsAndConcatenation) {
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ 1.0 ~ true ~ undefined_name }}"), "a1None1.0True");
  EXPECT_EQ(render("{{ 'a' + 'b' }}{{ 'ab' * 2 }}{{ xs + [4] }}{{ [1] * 2 }}{{ (1, 2) + (3,) }}"),
            "ababab[1, 2, 3, 4][1, 1](1, 2, 3)");
  EXPECT_EQ(render("{{ \"a\\tb\\\\n\" }}|{{ '\\x41\\u00e9\\101' }}|{{ 'it\\'s' }}|{{ \"q\" 'r' }}"),
            "a\tb\\n|AéA|it's|qr");
  EXPECT_EQ(render("{{ [1, 'a', none, true, 1.5] }}{{ {'k': [1, (2, 3)]} }}{{ (1,) }}{{ () }}"),
            "[1, 'a', None, True, 1.5]{'k': [1, (2, 3)]}(1,)()");
  EXPECT_EQ(render("{{ ['it\\'s', 'say \"x\"', 'a\\nb'] }}"), "[\"it's\", 'say \"x\"', 'a\\nb']");
}

TEST(JinjaExpressions, ComparisonsMembershipAndLogic) {
  EXPECT_EQ(render("{{ 1 == 1.0 }}{{ true == 1 }}{{ [1, 2] == (1, 2) }}{{ {'a': 1, 'b': 2} == "
                   "{'b': 2, 'a': 1} }}"),
            "TrueTrueFalseTrue");
  EXPECT_EQ(
      render("{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ 2 >= 3 }}"),
      "TrueFalseTrueTrueFalse");
  EXPECT_EQ(
      render(
          "{{ 'a' in 'cat' }}{{ 1 in xs }}{{ 'a' in d }}{{ 1 not in xs }}{{ 'x' not in 'abc' }}"),
      "TrueTrueTrueFalseTrue");
  // and/or return an operand, as in Python.
  EXPECT_EQ(render("{{ 0 or '' or 'x' }}|{{ 1 and 2 }}|{{ none and 1 }}|{{ not 0 }}|{{ "
                   "undefined_name or 'dflt' }}"),
            "x|2|None|True|dflt");
  EXPECT_EQ(
      render(
          "{{ 'x' if false }}|{{ 'x' if false else 'y' }}|{{ 'a' if 0 else 'b' if 0 else 'c' }}"),
      "|y|c");
}

TEST(JinjaExpressions, AttributesItemsAndSlices) {
  EXPECT_EQ(render("{{ msgs[1].role }}{{ msgs[1]['content'] }}{{ msgs.0.role }}{{ msgs[-1].role "
                   "}}{{ d.a }}"),
            "userhisystemassistant1");
  EXPECT_EQ(render("{{ d.missing }}|{{ xs[10] }}|{{ n.x }}|{{ d.missing is defined }}"),
            "|||False");
  EXPECT_EQ(
      render("{{ xs[::-1] }}{{ xs[1:] }}{{ xs[:-1] }}{{ xs[::2] }}{{ xs[-10:2] }}{{ xs[5:] }}"),
      "[3, 2, 1][2, 3][1, 2][1, 3][1, 2][]");
  // Strings index by code point, as Python's do.
  EXPECT_EQ(
      render(
          "{{ s[::-1] }}|{{ s[1] }}|{{ s[-3:] }}|{{ s[:2] }}|{{ '日本語'[::-1] }}|{{ s|length }}"),
      "olléh|é|llo|hé|語本日|5");
}

// HF renders with jinja2's default Undefined: printing it gives "", it is falsy, iterates as
// nothing and has length 0, but arithmetic or an attribute of it fails.
TEST(JinjaExpressions, UndefinedValues) {
  EXPECT_EQ(render("[{{ nope }}]{{ nope is defined }}{{ not nope }}{{ nope|length }}"
                   "{% for x in nope %}x{% endfor %}{{ nope|default('d') }}"),
            "[]FalseTrue0d");
  expect_render_error("{{ nope.attr }}", {"t:1: ", "'nope' is undefined"});
  expect_render_error("\n{{ nope + 1 }}", {"t:2: ", "'nope' is undefined"});
}

// ---- filters ----

TEST(JinjaFilters, StringFilters) {
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ s|upper }}|{{ 'ABC'|lower }}"),
            "x|a|HÉLLO|abc");
  EXPECT_EQ(render("{{ 'hELLO wORLD'|capitalize }}|{{ 'hello world-foo(bar'|title }}|{{ "
                   "'a-b'|replace('-', '+') }}"),
            "Hello world|Hello World-Foo(Bar|a+b");
  EXPECT_EQ(render("{{ 5|string ~ 'x' }}|{{ '<a href=\"x\">&\\''|e }}|{{ '<b>'|safe }}|{{ 'a b  "
                   "c'|wordcount }}"),
            "5x|&lt;a href=&#34;x&#34;&gt;&amp;&#39;|<b>|3");
  EXPECT_EQ(render("{{ 'ab\\ncd\\n\\nef'|indent(2) }}|{{ 'ab\\ncd'|indent(2, true) }}|{{ "
                   "'ab\\n\\ncd'|indent(2, blank=true) }}"),
            "ab\n  cd\n\n  ef|  ab\n  cd|ab\n  \n  cd");
  EXPECT_EQ(render("{{ 'abc'|center(9) }}|{{ 'hello world foo bar'|truncate(12) }}|{{ "
                   "'%s-%d'|format('a', 3) }}"),
            "   abc   |hello...|a-3");
}

// HF's tojson is json.dumps(ensure_ascii=False): ", " and ": " separators, non-ASCII as is,
// insertion order, Python float formatting; with indent, "," ends each line.
TEST(JinjaFilters, ToJsonAsHuggingFaceDefinesIt) {
  EXPECT_EQ(render("{{ {'a': 'é', 'b': [1, 2.0, none, true], 'c': {}}|tojson }}"),
            "{\"a\": \"é\", \"b\": [1, 2.0, null, true], \"c\": {}}");
  EXPECT_EQ(render("{{ {'a': [1, {'x': []}], 'b': {}}|tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    {\n      \"x\": []\n    }\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(render("{{ 'é\\n\"\\\\'|tojson }}|{{ 'é😀'|tojson(ensure_ascii=true) }}"),
            "\"é\\n\\\"\\\\\"|\"\\u00e9\\ud83d\\ude00\"");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}|{{ "
                   "d|tojson(indent='\\t') }}"),
            "{\"a\":2,\"b\":1}|{\n\t\"a\": 1,\n\t\"b\": 2\n}");
  EXPECT_EQ(render("{{ msgs[0]|tojson }}"), "{\"role\": \"system\", \"content\": \"sys\"}");
}

TEST(JinjaFilters, SequenceFilters) {
  EXPECT_EQ(render("{{ xs|length }}{{ d|count }}{{ xs|first }}{{ xs|last }}{{ xs|sum }}{{ xs|min "
                   "}}{{ xs|max }}"),
            "3213613");
  EXPECT_EQ(render("{{ xs|join(', ') }}|{{ msgs|map(attribute='role')|join('/') }}|{{ "
                   "xs|map('string')|list }}"),
            "1, 2, 3|system/user/assistant|['1', '2', '3']");
  EXPECT_EQ(render("{{ d|items|list }}|{{ d|dictsort(reverse=true) }}|{{ xs|reverse|list }}|{{ "
                   "'abc'|list }}"),
            "[('a', 1), ('b', 2)]|[('b', 2), ('a', 1)]|[3, 2, 1]|['a', 'b', 'c']");
  EXPECT_EQ(render("{{ words|sort }}|{{ words|sort(case_sensitive=true) }}|{{ "
                   "words|sort(reverse=true) }}|{{ words|unique|list }}"),
            "['A', 'a', 'b', 'C']|['A', 'C', 'a', 'b']|['C', 'b', 'A', 'a']|['b', 'A', 'C']");
  EXPECT_EQ(render("{{ msgs|join(', ', attribute='role') }}|{{ xs|select('==', 2)|list }}"),
            "system, user, assistant|[2]");
  EXPECT_EQ(
      render("{{ [{'a': 2}, {'a': 1}]|sort(attribute='a') }}|{{ [1, 2, 3, 4, 5]|batch(2)|list }}"),
      "[{'a': 1}, {'a': 2}]|[[1, 2], [3, 4], [5]]");
}

TEST(JinjaFilters, SelectAndRejectWithTests) {
  EXPECT_EQ(
      render("{{ xs|select('odd')|list }}{{ xs|reject('odd')|list }}{{ xs|select('gt', 1)|list }}"),
      "[1, 3][2][2, 3]");
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}"
                   "{{ msgs|rejectattr('role', 'in', ['user', 'system'])|list|length }}"
                   "{{ [0, 1, '', 'a', none]|select|list }}"),
            "['hi']1[1, 'a']");
}

TEST(JinjaFilters, NumbersAndDefaults) {
  EXPECT_EQ(render("{{ '3.7'|int }}{{ 'x'|int }}{{ 'x'|int(5) }}{{ 3.9|int }}{{ '0x1A'|int(0, 16) "
                   "}}{{ '12'|float }}"),
            "30532612.0");
  EXPECT_EQ(render("{{ -5|abs }}{{ (-5)|abs }}|{{ 2.5|round }}|{{ 3|round }}|{{ 2.675|round(2) "
                   "}}|{{ 3.14159|round(2, 'ceil') }}"),
            "55|2.0|3|2.67|3.15");
  EXPECT_EQ(render("{{ nope|default('d') }}{{ ''|default('d') }}{{ ''|default('d', true) }}{{ "
                   "none|default('d') }}{{ nope|d('x') }}"),
            "ddNonex");
}

// ---- tests ----

TEST(JinjaTests, TypeAndValueTests) {
  EXPECT_EQ(render("{{ nope is defined }}{{ nope is undefined }}{{ n is none }}{{ n is not none "
                   "}}{{ 's' is string }}"
                   "{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ "
                   "true is integer }}"),
            "FalseTrueTrueFalseTrueTrueTrueTrueTrueFalse");
  EXPECT_EQ(render("{{ d is mapping }}{{ xs is iterable }}{{ 's' is sequence }}{{ 3 is iterable "
                   "}}{{ range is callable }}"
                   "{{ true is true }}{{ false is false }}{{ 0 is false }}"),
            "TrueTrueTrueFalseTrueTrueTrueFalse");
  EXPECT_EQ(
      render(
          "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 1 "
          "is lt 2 }}"
          "{{ 1 is le 1 }}{{ 2 is gt 1 }}{{ 1 is ge 2 }}{{ 1 is in xs }}{{ 'a' is equalto 'a' }}"),
      "TrueTrueTrueTrueFalseTrueTrueTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ 'ab' is lower }}{{ 'AB' is upper }}{{ none is sameas none }}{{ xs is sameas "
                   "xs }}{{ [1] is sameas [1] }}"),
            "TrueTrueTrueTrueFalse");
}

// ---- methods ----

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(
      render(
          "{{ 'abc'.startswith('a') }}{{ 'abc'.startswith(('x', 'a')) }}{{ 'abc'.endswith('bc') }}"
          "{{ '12'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}"),
      "TrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 'xxaxx'.strip('x') }}|{{ '  a '.lstrip() }}|{{ '  a '.rstrip() }}|{{ "
                   "'\\n\\nx\\n'.strip('\\n') }}"),
            "a|a |  a|x");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ "
                   "'a b c'.rsplit(' ', 1) }}"),
            "['a', 'b', '', 'c']['a', 'b']['a', 'b c']['a b', 'c']");
  EXPECT_EQ(render("{{ 'x</think>\\n\\ny'.split('</think>')[-1].lstrip('\\n') }}|{{ "
                   "'a\\nb'.splitlines() }}"),
            "y|['a', 'b']");
  EXPECT_EQ(render("{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'aXb'.replace('X', "
                   "'-') }}|{{ 'ab'.upper() }}"
                   "|{{ s.find('l') }}{{ 'aaa'.count('a') }}|{{ '-'.join(['a', 'b']) }}"),
            "Hello World|Hello|a-b|AB|23|a-b");
  EXPECT_EQ(render("{{ 'AbC'.lower() }}|{{ 'x.py'.endswith(('.md', '.py')) }}|{{ 'a-b'.title() }}"),
            "abc|True|A-B");
  EXPECT_EQ(render("{{ '{} and {}'.format('a', 'b') }}|{{ '{name}!'.format(name='hi') }}|{{ "
                   "'%s=%d' % ('x', 3) }}"),
            "a and b|hi!|x=3");
}

TEST(JinjaMethods, DictAndListMethods) {
  EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 5) }}{{ d.keys()|list }}{{ "
                   "d.values()|list }}"),
            "1None5['a', 'b'][1, 2]");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ xs.index(2) }}{{ "
                   "xs.count(1) }}"),
            "a=1;b=2;11");
}

// ---- globals ----

TEST(JinjaGlobals, RangeNamespaceDictJoinerCycler) {
  EXPECT_EQ(render("{{ range(3)|list }}{{ range(2, 5)|list }}{{ range(10, 0, -3)|list }}"),
            "[0, 1, 2][2, 3, 4][10, 7, 4, 1]");
  EXPECT_EQ(render("{% set ns = namespace(a=1, b=[1]) %}{{ ns.a }}{{ ns['b'] }}{{ ns }}"),
            "1[1]<Namespace {'a': 1, 'b': [1]}>");
  EXPECT_EQ(render("{{ dict(a=1, b=2) }}{{ dict({'x': 1}, y=2) }}"),
            "{'a': 1, 'b': 2}{'x': 1, 'y': 2}");
  EXPECT_EQ(render("{% set j = joiner('|') %}{% for x in xs %}{{ j() }}{{ x }}{% endfor %}"),
            "1|2|3");
  EXPECT_EQ(render("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ "
                   "c.current }}"),
            "abab");
}

TEST(JinjaGlobals, StrftimeNowFormatsTheLocalTime) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char year[8];
  std::strftime(year, sizeof year, "%Y", &local);
  // The year could only differ if the test ran across midnight of New Year's Eve.
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), year);
  EXPECT_EQ(render("{{ strftime_now('%d %B %Y')|length > 8 }}"), "True");
}

// ---- errors: UserError "NAME:LINE: ..." ----

TEST(JinjaErrors, SyntaxErrorsNameTheLine) {
  expect_user_error([] { jinja::Template("a\n\n{{ x|nosuch }}", "t"); },
                    {"t:3: ", "unknown filter 'nosuch'"});
  expect_user_error([] { jinja::Template("a\n{% for x in xs %}\nb\n", "t"); },
                    {"t:2: ", "unclosed '{% for %}'", "endfor"});
  expect_user_error([] { jinja::Template("{{ 1 + }}", "t"); }, {"t:1: ", "unexpected"});
  expect_user_error([] { jinja::Template("\n{% if x %}{% endfor %}", "t"); }, {"t:2: ", "endfor"});
  expect_user_error([] { jinja::Template("{{ x is nosuch }}", "t"); },
                    {"t:1: ", "unknown test 'nosuch'"});
  expect_user_error([] { jinja::Template("{% include 'x' %}", "t"); }, {"t:1: ", "include"});
  expect_user_error([] { jinja::Template("{{ 'abc }}", "t"); }, {"t:1: ", "unterminated string"});
  expect_user_error([] { jinja::Template("x\n{# never closed", "t"); }, {"t:2: ", "comment"});
  expect_user_error([] { jinja::Template("{% break %}", "t"); }, {"t:1: ", "outside a for loop"});
}

TEST(JinjaErrors, RenderErrorsNameTheLine) {
  expect_render_error("line1\n{{ raise_exception('Roles must alternate') }}",
                      {"t:2: ", "Roles must alternate"});
  expect_render_error("\n\n{{ 'a' + 1 }}",
                      {"t:3: ", "unsupported operand type(s) for +: 'str' and 'int'"});
  expect_render_error("{{ d.nope() }}", {"t:1: ", "'dict object' has no attribute 'nope'"});
  expect_render_error("{{ nosuch_function() }}", {"t:1: ", "'nosuch_function' is undefined"});
  expect_render_error("{% for x in xs %}\n{{ x / 0 }}{% endfor %}", {"t:2: ", "division by zero"});
  expect_render_error("{% for a in n %}{% endfor %}",
                      {"t:1: ", "'NoneType' object is not iterable"});
  expect_render_error("{% set ns = 1 %}{% set ns.x = 2 %}", {"t:1: ", "namespace"});
  // An unknown filter inside an {% if %} only fails when it runs, as in Jinja2.
  EXPECT_EQ(render("{% if false %}{{ x|nosuch }}{% endif %}ok"), "ok");
  expect_render_error("{% if true %}\n{{ 1|nosuch }}{% endif %}",
                      {"t:2: ", "unknown filter 'nosuch'"});
}

// HF's sandbox is immutable: templates cannot modify lists or dicts.
TEST(JinjaErrors, RefusesToModifyValues) {
  expect_render_error("{{ xs.append(4) }}", {"t:1: ", "'append'", "unsafe"});
  expect_render_error("{% set ns = namespace() %}{% set ns._hidden = 1 %}",
                      {"t:1: ", "underscore"});
}

// ---- limits: no template can crash or hang the process ----

TEST(JinjaLimits, DeepRecursionAndHugeValuesFailCleanly) {
  expect_render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                      {"t:1: ", "recursion"});
  expect_render_error("{{ range(1000000)|length }}", {"t:1: ", "range too big"});
  expect_render_error("{{ 'x' * 1000000000 }}", {"t:1: ", "longer than"});
  expect_render_error(
      "{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}{% endfor %}",
      {"t:1: ", "loop iterations"});
  expect_render_error("{{ 2 ** 64 }}", {"t:1: ", "integer overflow"});
  expect_user_error(
      [] {
        jinja::Template("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "t");
      },
      {"t:1: ", "nested"});
  expect_user_error([] { jinja::Template("{{ 1" + std::string(100000, '+') + " }}", "t"); },
                    {"t:1: "});
  // A value nested 100 000 deep is built and dropped without recursing that deep.
  EXPECT_EQ(
      render("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
             "{% endfor %}{{ ns.x|length }}"),
      "1");
  // A namespace holding itself: printing it fails, and the cycle does not leak.
  expect_render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
                      {"t:1: ", "nested"});
}

}  // namespace
}  // namespace flywheel
