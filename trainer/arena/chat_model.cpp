#include "trainer/arena/chat_model.h"

#include <algorithm>
#include <filesystem>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

// The tokenizer's directory, checked first so a missing tokenizer is named before the weights
// are read.
const std::string& with_tokenizer(const std::string& dir) {
  const std::filesystem::path d(dir);
  if (!std::filesystem::exists(d / "tokenizer.json") &&
      !std::filesystem::exists(d / "tokenizer.model"))
    throw UserError(dir +
                    ": no tokenizer (tokenizer.json or tokenizer.model); the arena's "
                    "models read and write text");
  return dir;
}

std::vector<ChatMessage> chat_messages(const nlohmann::ordered_json& conversation) {
  std::vector<ChatMessage> messages;
  for (const auto& m : conversation)
    messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return messages;
}

}  // namespace

ChatModel::ChatModel(const std::string& dir, const LoadOptions& load)
    : dir_(with_tokenizer(dir)),
      model_(load_causal_lm(dir, load)),
      tokenizer_(Tokenizer::from_dir(dir)) {}

ChatModel::ChatModel(LlamaForCausalLM model, Tokenizer tokenizer, std::string name)
    : dir_(std::move(name)), model_(std::move(model)), tokenizer_(std::move(tokenizer)) {}

std::vector<Completion> ChatModel::reply(const std::vector<nlohmann::ordered_json>& conversations,
                                         const std::vector<std::string>& where,
                                         const ReplyOptions& options) {
  options.sampling.validate("--");
  const int64_t context = model_->config().max_position_embeddings;
  std::vector<Request> requests;
  int64_t longest = 1;
  for (size_t i = 0; i < conversations.size(); ++i) {
    Request r;
    try {
      if (conversations[i].is_string()) {
        if (options.add_bos && tokenizer_.bos_id() >= 0) r.prompt.push_back(tokenizer_.bos_id());
        const auto text = tokenizer_.encode(conversations[i].get<std::string>());
        r.prompt.insert(r.prompt.end(), text.begin(), text.end());
      } else {
        r.prompt = render_chat(options.chat_template, chat_messages(conversations[i]), tokenizer_,
                               {/*add_bos=*/true, /*add_generation_prompt=*/true, kNoTraining})
                       .ids;
      }
    } catch (const UserError& e) {
      throw UserError(where[i] + ": " + e.what());
    }
    const int64_t room = context - static_cast<int64_t>(r.prompt.size());
    if (room < 1)
      throw UserError(where[i] + ": the prompt is " + std::to_string(r.prompt.size()) +
                      " tokens, and " + dir_ + " holds " + std::to_string(context) +
                      " (max_position_embeddings)");
    // A long prompt leaves fewer new tokens; a reply cut there says finish_reason "length".
    r.max_new_tokens = std::min(options.max_new_tokens, room);
    r.sampling = options.sampling;
    r.seed = options.seed;
    r.stop_ids = tokenizer_.stop_ids();
    r.id = static_cast<int64_t>(i);
    longest = std::max(longest, static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens);
    requests.push_back(std::move(r));
  }
  if (requests.empty()) return {};
  const int64_t seqs =
      std::min<int64_t>(options.max_num_seqs, static_cast<int64_t>(requests.size()));
  Engine engine(model_, sized_engine_options(model_, seqs, longest), &tokenizer_);
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      engine.validate(requests[i]);
    } catch (const UserError& e) {
      throw UserError(where[i] + ": " + e.what());
    }
  }
  auto results = engine.generate(requests);
  std::vector<Completion> out;
  out.reserve(results.size());
  for (auto& r : results)
    out.push_back(std::move(r.at(0)));
  return out;
}

}  // namespace flywheel
