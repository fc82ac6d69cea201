#include "trainer/data/examples.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <thread>

#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/data/token_store.h"
#include "trainer/text/chat_template.h"

namespace flywheel {
namespace {

using nlohmann::json;
using Messages = std::vector<ChatMessage>;

// ---- reading record fields ----

// The value as JSON for "got ...", cut short when long.
std::string describe(const json* v) {
  if (v == nullptr) return "nothing (missing)";
  std::string text = v->dump();
  if (text.size() <= 60) return text;
  size_t cut = 57;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;  // not inside a UTF-8 character
  return text.substr(0, cut) + "...";
}

[[noreturn]] void bad_key(const std::string& key, const std::string& expected, const json* got) {
  throw UserError("key '" + key + "': expected " + expected + ", got " + describe(got));
}

const json* field(const json& object, const std::string& key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string key_list(const json& record) {
  if (record.empty()) return "no keys";
  std::string out = "keys";
  for (const auto& item : record.items())
    out += (out == "keys" ? " '" : ", '") + item.key() + "'";
  return out;
}

std::string get_string(const json* v, const std::string& key) {
  if (v == nullptr || !v->is_string()) bad_key(key, "a string", v);
  return v->get<std::string>();
}

Messages get_messages(const json* v, const std::string& key) {
  if (v == nullptr || !v->is_array() || v->empty()) {
    bad_key(key, "a non-empty list of {\"role\", \"content\"} messages", v);
  }
  Messages out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string at = key + "[" + std::to_string(i) + "]";
    if (!m.is_object()) bad_key(at, "a {\"role\", \"content\"} message", &m);
    const json* role = field(m, "role");
    if (role == nullptr || !role->is_string() ||
        (*role != "system" && *role != "user" && *role != "assistant")) {
      bad_key(at + ".role", "one of \"system\", \"user\", \"assistant\"", role);
    }
    out.push_back({role->get<std::string>(), get_string(field(m, "content"), at + ".content")});
  }
  return out;
}

size_t count_assistant(Messages::const_iterator begin, Messages::const_iterator end) {
  return static_cast<size_t>(
      std::count_if(begin, end, [](const ChatMessage& m) { return m.role == "assistant"; }));
}

// Anthropic HH: "\n\nHuman: ...\n\nAssistant: ..." turns. A few records lack the space after
// the colon. "\n\nHumans:" and the like are text, not turn markers.
Messages parse_hh_text(const json* v, const std::string& key) {
  const std::string expected =
      "Anthropic HH text starting with \"\\n\\nHuman:\" (or a 'prompt' key with the prompt)";
  if (v == nullptr || !v->is_string()) bad_key(key, expected, v);
  const std::string& text = v->get_ref<const std::string&>();
  struct Marker {
    std::string text, role;
  };
  static const Marker kMarkers[] = {{"\n\nHuman:", "user"}, {"\n\nAssistant:", "assistant"}};
  auto next_marker = [&](size_t from, const Marker** which) {
    size_t best = std::string::npos;
    for (const Marker& m : kMarkers) {
      const size_t at = text.find(m.text, from);
      if (at < best) {
        best = at;
        *which = &m;
      }
    }
    return best;
  };
  const Marker* marker = nullptr;
  if (next_marker(0, &marker) != 0 || marker->role != "user") bad_key(key, expected, v);
  Messages out;
  for (size_t at = 0; at != std::string::npos;) {
    size_t begin = at + marker->text.size();
    if (begin < text.size() && text[begin] == ' ') ++begin;
    const Marker* next = nullptr;
    at = next_marker(begin, &next);
    out.push_back({marker->role, text.substr(begin, at == std::string::npos ? at : at - begin)});
    marker = next;
  }
  if (count_assistant(out.begin(), out.end()) == 0) {
    throw UserError("key '" + key +
                    "': expected Anthropic HH text with an \"\\n\\nAssistant:\" turn, got none");
  }
  return out;
}

// ---- tokenizing ----

class Encoder {
 public:
  Encoder(const Tokenizer& tokenizer, const DataOptions& options)
      : tok_(tokenizer), options_(options) {}

  // Raw text without a template, as TRL tokenizes non-conversational data:
  // [bos] prompt completion eos, training the completion and the eos.
  TokenSequence text(const std::string& prompt, const std::string& completion) const {
    TokenSequence s;
    if (options_.add_bos) push(&s, {tok_.bos_id()}, 0);
    push(&s, tok_.encode(prompt), 0);
    push(&s, tok_.encode(completion), 1);
    push(&s, {tok_.eos_id()}, 1);
    return s;
  }

  // The conversation through the chat template, training the assistant turns from message
  // `first_trained` on. render_chat's mask has one run of trained tokens per trained assistant
  // message (its content and end token), separated by untrained role headers.
  TokenSequence chat(const Messages& messages, size_t first_trained) const {
    ChatRenderOptions render;
    render.add_bos = options_.add_bos;
    render.first_trained = first_trained;
    const RenderedChat r = render_chat(options_.chat_template, messages, tok_, render);
    size_t runs = 0;
    for (size_t i = 0; i < r.assistant_mask.size(); ++i)
      runs += r.assistant_mask[i] != 0 && (i == 0 || r.assistant_mask[i - 1] == 0);
    const size_t trained = count_assistant(messages.begin() + first_trained, messages.end());
    if (runs != trained) {
      throw UserError("chat template '" + options_.chat_template +
                      "' with this tokenizer does not keep assistant turns apart (" +
                      std::to_string(runs) + " trained runs for " + std::to_string(trained) +
                      " trained assistant messages)");
    }
    return TokenSequence{r.ids, r.assistant_mask};
  }

 private:
  static void push(TokenSequence* s, const std::vector<int64_t>& ids, uint8_t trained) {
    s->ids.insert(s->ids.end(), ids.begin(), ids.end());
    s->loss_mask.insert(s->loss_mask.end(), ids.size(), trained);
  }

  const Tokenizer& tok_;
  const DataOptions& options_;
};

// A prompt shared by several completions (TRL's prompt/completion and ranking formats).
struct Prompt {
  const json* value;
  Messages messages;  // when value is a list
};

Prompt get_prompt(const json* v) {
  if (v != nullptr && v->is_string()) return {v, {}};
  if (v != nullptr && v->is_array()) return {v, get_messages(v, "prompt")};
  bad_key("prompt", "a string or a list of messages", v);
}

// A string prompt takes a string completion (raw text); a message-list prompt takes a
// message-list completion with at least one assistant turn, and only those turns are trained.
TokenSequence complete(const Prompt& prompt, const json* completion, const std::string& key,
                       const Encoder& encoder) {
  if (prompt.value->is_string()) {
    if (completion == nullptr || !completion->is_string()) {
      bad_key(key, "a string, as 'prompt' is one", completion);
    }
    return encoder.text(prompt.value->get<std::string>(), completion->get<std::string>());
  }
  if (completion == nullptr || !completion->is_array()) {
    bad_key(key, "a list of messages, as 'prompt' is one", completion);
  }
  Messages messages = prompt.messages;
  const Messages tail = get_messages(completion, key);
  if (count_assistant(tail.begin(), tail.end()) == 0) {
    throw UserError("key '" + key + "': expected at least one assistant message, got none");
  }
  messages.insert(messages.end(), tail.begin(), tail.end());
  return encoder.chat(messages, prompt.messages.size());
}

// Two full conversations: the prompt is the longest run of messages they share, short of
// each side's final (assistant) message; see examples.h for why only what follows is trained.
PreferenceExample conversation_pair(const Messages& chosen, const Messages& rejected,
                                    const Encoder& encoder) {
  for (const auto* side : {&chosen, &rejected}) {
    if (side->back().role != "assistant") {
      const std::string key = side == &chosen ? "chosen" : "rejected";
      throw UserError("key '" + key + "': expected a conversation ending with an assistant " +
                      "message, got one ending with a " + side->back().role + " message");
    }
  }
  size_t shared = 0;
  const size_t limit = std::min(chosen.size(), rejected.size()) - 1;
  while (shared < limit && chosen[shared].role == rejected[shared].role &&
         chosen[shared].content == rejected[shared].content) {
    ++shared;
  }
  return {encoder.chat(chosen, shared), encoder.chat(rejected, shared)};
}

// ---- record formats ----

SftExample to_sft(const json& record, const Encoder& encoder) {
  if (const json* messages = field(record, "messages")) {
    const Messages m = get_messages(messages, "messages");
    if (count_assistant(m.begin(), m.end()) == 0) {
      throw UserError("key 'messages': expected at least one assistant message, got none");
    }
    return {encoder.chat(m, 0)};
  }
  if (record.contains("prompt") && record.contains("completion")) {
    return {complete(get_prompt(field(record, "prompt")), field(record, "completion"), "completion",
                     encoder)};
  }
  throw UserError("expected 'messages' or 'prompt' and 'completion' keys, got " + key_list(record));
}

PreferenceExample to_preference(const json& record, const Encoder& encoder) {
  const json* chosen = field(record, "chosen");
  const json* rejected = field(record, "rejected");
  if (chosen == nullptr || rejected == nullptr) {
    throw UserError("expected 'chosen' and 'rejected' keys (and optionally 'prompt'), got " +
                    key_list(record));
  }
  const json* prompt = field(record, "prompt");
  // TRL: an explicit prompt, and chosen/rejected are the completions.
  if (prompt != nullptr && (chosen->is_string() || prompt->is_array())) {
    const Prompt p = get_prompt(prompt);
    return {complete(p, chosen, "chosen", encoder), complete(p, rejected, "rejected", encoder)};
  }
  // Tulu 3 / UltraFeedback: full conversations (their string "prompt" repeats the first turn).
  if (chosen->is_array()) {
    const Messages chosen_messages = get_messages(chosen, "chosen");
    return conversation_pair(chosen_messages, get_messages(rejected, "rejected"), encoder);
  }
  if (!chosen->is_string()) bad_key("chosen", "a list of messages or a string", chosen);
  const Messages chosen_messages = parse_hh_text(chosen, "chosen");  // errors in key order
  return conversation_pair(chosen_messages, parse_hh_text(rejected, "rejected"), encoder);
}

RankingExample to_ranking(const json& record, const Encoder& encoder) {
  const json* responses = field(record, "responses");
  const json* ranking = field(record, "ranking");
  if (!record.contains("prompt") || responses == nullptr || ranking == nullptr) {
    throw UserError("expected 'prompt', 'responses' and 'ranking' keys, got " + key_list(record));
  }
  if (!responses->is_array() || responses->size() < 2) {
    bad_key("responses", "a list of at least 2 responses", responses);
  }
  const size_t k = responses->size();
  const std::string expected =
      "a permutation of 0.." + std::to_string(k - 1) + " listing the responses from best to worst";
  std::vector<bool> seen(k, false);
  if (!ranking->is_array() || ranking->size() != k) bad_key("ranking", expected, ranking);
  for (const json& index : *ranking) {
    if (!index.is_number_integer() || index.get<int64_t>() < 0 ||
        index.get<int64_t>() >= static_cast<int64_t>(k) || seen[index.get<size_t>()]) {
      bad_key("ranking", expected, ranking);
    }
    seen[index.get<size_t>()] = true;
  }
  const Prompt prompt = get_prompt(field(record, "prompt"));
  RankingExample out;
  for (const json& index : *ranking) {
    const size_t i = index.get<size_t>();
    out.responses.push_back(
        complete(prompt, &(*responses)[i], "responses[" + std::to_string(i) + "]", encoder));
  }
  return out;
}

std::vector<TokenSequence*> sequences(SftExample* e) {
  return {&e->seq};
}
std::vector<TokenSequence*> sequences(PreferenceExample* e) {
  return {&e->chosen, &e->rejected};
}
std::vector<TokenSequence*> sequences(RankingExample* e) {
  std::vector<TokenSequence*> out;
  for (TokenSequence& s : e->responses)
    out.push_back(&s);
  return out;
}

// ---- over-long examples ----

enum class Fit { kAsIs, kTruncated, kDropped };

// The sequences of one example share their prompt, so truncation cuts the same number of
// tokens from each (right after a leading bos), keeping the prompts identical.
Fit fit_to_length(const std::vector<TokenSequence*>& seqs, const DataOptions& options,
                  int64_t bos_id) {
  int64_t cut = 0;
  for (const TokenSequence* s : seqs)
    cut = std::max(cut, s->size() - options.max_length);
  if (cut == 0) return Fit::kAsIs;
  if (options.overlong == "drop") return Fit::kDropped;
  for (const TokenSequence* s : seqs) {
    const int64_t keep = !s->ids.empty() && s->ids.front() == bos_id ? 1 : 0;
    if (s->prompt_length() - keep < cut) return Fit::kDropped;
  }
  for (TokenSequence* s : seqs) {
    const int64_t keep = !s->ids.empty() && s->ids.front() == bos_id ? 1 : 0;
    s->ids.erase(s->ids.begin() + keep, s->ids.begin() + keep + cut);
    s->loss_mask.erase(s->loss_mask.begin() + keep, s->loss_mask.begin() + keep + cut);
  }
  return Fit::kTruncated;
}

// ---- loading ----

template <typename Example>
using Converter = Example (*)(const json&, const Encoder&);

// What became of one record.
template <typename Example>
struct Outcome {
  Example example;
  Fit fit = Fit::kAsIs;
  std::string invalid;  // the error, for an invalid record
};

template <typename Example>
Outcome<Example> convert_line(const std::string& path, int64_t line, const std::string& text,
                              const Encoder& encoder, const DataOptions& options, int64_t bos_id,
                              Converter<Example> convert) {
  Outcome<Example> out;
  try {
    const auto value = parse_jsonl_line(path, line, text);
    try {
      if (!value.is_object()) throw UserError("expected a JSON object, got " + describe(&value));
      out.example = convert(value, encoder);
    } catch (const JsonlSyntaxError&) {
      throw;
    } catch (const UserError& e) {
      throw UserError(path + ":" + std::to_string(line) + ": " + e.what());
    }
  } catch (const UserError& e) {
    out.invalid = e.what();
    return out;
  }
  out.fit = fit_to_length(sequences(&out.example), options, bos_id);
  return out;
}

// Lines are read in batches; a batch is parsed, templated and tokenized by `threads` threads,
// each taking a contiguous run of it, and the outcomes are taken in file order, so the
// result (examples, counts, the first invalid record) is the same for any number of threads.
template <typename Example>
void load_examples(const std::string& path, const Tokenizer& tokenizer, const DataOptions& options,
                   int threads, DataStats* stats, Converter<Example> convert,
                   const std::function<void(Example&&)>& take) {
  options.validate("data options for " + path);
  if (options.add_bos && tokenizer.bos_id() < 0) {
    throw UserError(path + ": add_bos is set but the tokenizer defines no bos token");
  }
  if (tokenizer.eos_id() < 0) {
    throw UserError(path + ": the tokenizer defines no eos token (set eos_token in the model's " +
                    "tokenizer_config.json)");
  }
  constexpr size_t kBatchLines = 8192;
  const Encoder encoder(tokenizer, options);
  const auto workers = static_cast<size_t>(std::max(1, threads));
  DataStats counts;
  JsonlReader reader(path);
  std::vector<std::string> texts(kBatchLines);
  std::vector<int64_t> lines(kBatchLines);
  std::vector<Outcome<Example>> outcomes(kBatchLines);
  for (bool more = true; more;) {
    size_t n = 0;
    while (n < kBatchLines && (more = reader.next_line(&texts[n], &lines[n])))
      ++n;
    const auto work = [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        outcomes[i] =
            convert_line(path, lines[i], texts[i], encoder, options, tokenizer.bos_id(), convert);
      }
    };
    const size_t per = (n + workers - 1) / workers;
    std::vector<std::thread> pool;
    for (size_t begin = per; begin < n; begin += per)
      pool.emplace_back(work, begin, std::min(n, begin + per));
    work(0, std::min(n, per));
    for (auto& t : pool)
      t.join();
    for (size_t i = 0; i < n; ++i) {
      auto& o = outcomes[i];
      ++counts.records;
      if (!o.invalid.empty()) {
        // An invalid record throws, or with skip_invalid is counted and skipped.
        if (!options.skip_invalid) throw UserError(o.invalid);
        if (counts.skipped_invalid++ == 0) counts.first_invalid = o.invalid;
        continue;
      }
      if (o.fit == Fit::kDropped) {
        ++counts.dropped_overlong;
        continue;
      }
      if (o.fit == Fit::kTruncated) ++counts.truncated;
      ++counts.examples;
      take(std::move(o.example));
    }
  }
  if (stats != nullptr) stats->add(counts);
}

template <typename Example>
std::vector<Example> load_all(const std::string& path, const Tokenizer& tokenizer,
                              const DataOptions& options, int threads, DataStats* stats,
                              Converter<Example> convert) {
  std::vector<Example> out;
  load_examples<Example>(path, tokenizer, options, threads, stats, convert,
                         [&](Example&& e) { out.push_back(std::move(e)); });
  return out;
}

template <typename Example>
void load_into_store(const std::string& path, const Tokenizer& tokenizer,
                     const DataOptions& options, int threads, DataStats* stats,
                     Converter<Example> convert, TokenStore* store) {
  load_examples<Example>(path, tokenizer, options, threads, stats, convert, [&](Example&& e) {
    std::vector<const TokenSequence*> seqs;
    for (auto* s : sequences(&e))
      seqs.push_back(s);
    store->add(seqs);
  });
}

}  // namespace

TokenSequence encode_sft_record(const nlohmann::json& record, const Tokenizer& tokenizer,
                                const DataOptions& options) {
  if (!record.is_object()) throw UserError("expected a JSON object, got " + describe(&record));
  return to_sft(record, Encoder(tokenizer, options)).seq;
}

int64_t TokenSequence::prompt_length() const {
  const auto first = std::find(loss_mask.begin(), loss_mask.end(), 1);
  return static_cast<int64_t>(first - loss_mask.begin());
}

void DataOptions::validate(const std::string& where) const {
  const auto& names = chat_template_names();
  if (std::find(names.begin(), names.end(), chat_template) == names.end()) {
    std::string known;
    for (const std::string& n : names)
      known += (known.empty() ? "" : ", ") + n;
    throw UserError(where + ": key 'chat_template': expected one of " + known + ", got '" +
                    chat_template + "'");
  }
  if (max_length <= 0) {
    throw UserError(where + ": key 'max_length': expected a positive number of tokens, got " +
                    std::to_string(max_length));
  }
  if (overlong != "truncate_prompt" && overlong != "drop") {
    throw UserError(where + ": key 'overlong': expected 'truncate_prompt' or 'drop', got '" +
                    overlong + "'");
  }
}

void DataStats::add(const DataStats& other) {
  records += other.records;
  examples += other.examples;
  truncated += other.truncated;
  dropped_overlong += other.dropped_overlong;
  if (skipped_invalid == 0) first_invalid = other.first_invalid;
  skipped_invalid += other.skipped_invalid;
}

std::string DataStats::summary() const {
  std::string out = std::to_string(records) + " records: " + std::to_string(examples) +
                    " examples (" + std::to_string(truncated) + " truncated), " +
                    std::to_string(dropped_overlong) + " dropped as over-long, " +
                    std::to_string(skipped_invalid) + " skipped as invalid";
  if (!first_invalid.empty()) out += " (first: " + first_invalid + ")";
  return out;
}

std::vector<SftExample> load_sft_examples(const std::string& path, const Tokenizer& tokenizer,
                                          const DataOptions& options, DataStats* stats,
                                          int threads) {
  return load_all<SftExample>(path, tokenizer, options, threads, stats, to_sft);
}

std::vector<PreferenceExample> load_preference_examples(const std::string& path,
                                                        const Tokenizer& tokenizer,
                                                        const DataOptions& options,
                                                        DataStats* stats, int threads) {
  return load_all<PreferenceExample>(path, tokenizer, options, threads, stats, to_preference);
}

std::vector<RankingExample> load_ranking_examples(const std::string& path,
                                                  const Tokenizer& tokenizer,
                                                  const DataOptions& options, DataStats* stats,
                                                  int threads) {
  return load_all<RankingExample>(path, tokenizer, options, threads, stats, to_ranking);
}

void load_examples_into(ExampleKind kind, const std::string& path, const Tokenizer& tokenizer,
                        const DataOptions& options, int threads, DataStats* stats,
                        TokenStore* store) {
  switch (kind) {
    case ExampleKind::kSft:
      return load_into_store<SftExample>(path, tokenizer, options, threads, stats, to_sft, store);
    case ExampleKind::kPreference:
      return load_into_store<PreferenceExample>(path, tokenizer, options, threads, stats,
                                                to_preference, store);
    case ExampleKind::kRanking:
      return load_into_store<RankingExample>(path, tokenizer, options, threads, stats, to_ranking,
                                             store);
  }
}

}  // namespace flywheel
