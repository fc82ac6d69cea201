#include "trainer/rl/judged_samples.h"

#include <algorithm>

#include "rollout/engine.h"
#include "verifiers/batch.h"

namespace flywheel {

std::vector<Verdict> judge(const std::vector<const RlPrompt*>& prompts,
                           const std::vector<std::string>& responses, double success_reward) {
  std::vector<VerifyJob> jobs;
  std::vector<size_t> judged;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i]->verifier.empty()) continue;
    judged.push_back(i);
    VerifyJob job;
    job.verifier = &find_verifier(prompts[i]->verifier);
    job.input.prompt = prompts[i]->text;
    job.input.response = responses[i];
    job.input.ground_truth = prompts[i]->ground_truth;
    job.input.fields = prompts[i]->fields;
    jobs.push_back(std::move(job));
  }
  VerifyOptions options;
  options.success_reward = success_reward;
  const auto verdicts = verify_batch(jobs, options);
  std::vector<Verdict> out(prompts.size());
  for (size_t k = 0; k < judged.size(); ++k)
    out[judged[k]] = verdicts[k];
  return out;
}

std::vector<std::vector<JudgedSample>> sample_and_judge(LlamaForCausalLM& model,
                                                        const Tokenizer& tokenizer,
                                                        const std::vector<RlPrompt>& prompts,
                                                        const SampleOptions& options) {
  if (prompts.empty()) return {};
  std::vector<Request> requests;
  int64_t longest = 0;
  for (const auto& p : prompts) {
    Request r;
    r.prompt = p.ids;
    r.sampling.temperature = options.temperature;
    r.max_new_tokens = options.max_new_tokens;
    r.stop_ids = tokenizer.stop_ids();
    r.n = options.n;
    r.seed = options.seed;
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.ids.size()));
    requests.push_back(std::move(r));
  }
  Engine engine(model,
                sized_engine_options(model, std::min<int64_t>(256, std::ssize(prompts) * options.n),
                                     longest + options.max_new_tokens),
                &tokenizer);
  const auto outputs = engine.generate(requests);
  std::vector<const RlPrompt*> judged_prompts;
  std::vector<std::string> texts;
  for (size_t k = 0; k < prompts.size(); ++k) {
    for (const auto& c : outputs[k]) {
      judged_prompts.push_back(&prompts[k]);
      texts.push_back(c.text);
    }
  }
  const auto verdicts = judge(judged_prompts, texts, options.success_reward);
  std::vector<std::vector<JudgedSample>> out(prompts.size());
  for (size_t k = 0, i = 0; k < prompts.size(); ++k)
    for (size_t j = 0; j < outputs[k].size(); ++j, ++i)
      out[k].push_back({texts[i], verdicts[i]});
  return out;
}

double mean_score(const std::vector<std::vector<JudgedSample>>& samples) {
  double sum = 0, count = 0;
  for (const auto& group : samples) {
    for (const auto& s : group) {
      sum += s.verdict.score;
      ++count;
    }
  }
  return count > 0 ? sum / count : 0.0;
}

std::vector<nlohmann::json> preference_pairs(const std::vector<RlPrompt>& prompts,
                                             const std::vector<std::vector<JudgedSample>>& samples,
                                             bool ground_truth_fallback) {
  std::vector<nlohmann::json> rows;
  for (size_t k = 0; k < prompts.size(); ++k) {
    const std::string* chosen = nullptr;
    const std::string* rejected = nullptr;
    for (const auto& s : samples[k]) {
      if (!s.verdict.correct) continue;
      const std::string*& side = *s.verdict.correct ? chosen : rejected;
      if (side == nullptr) side = &s.text;
    }
    if (chosen == nullptr && ground_truth_fallback && !prompts[k].ground_truth.empty())
      chosen = &prompts[k].ground_truth;
    if (chosen == nullptr || rejected == nullptr) continue;
    const RlPrompt& p = prompts[k];
    if (p.chat) {
      const auto with_answer = [&](const std::string& answer) {
        auto messages = p.fields["messages"];
        messages.push_back({{"role", "assistant"}, {"content", answer}});
        return messages;
      };
      rows.push_back({{"chosen", with_answer(*chosen)}, {"rejected", with_answer(*rejected)}});
    } else {
      rows.push_back({{"prompt", p.text}, {"chosen", *chosen}, {"rejected", *rejected}});
    }
  }
  return rows;
}

}  // namespace flywheel
