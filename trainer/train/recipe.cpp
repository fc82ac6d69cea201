#include "trainer/train/recipe.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

// Where a value came from, for error messages: "FILE:LINE" or the command-line override.
struct Origin {
  std::string file;
  std::set<std::string> overridden;  // dotted keys set on the command line
  bool check_paths = true;           // paths must exist (a training run); not for planning

  std::string at(const std::string& key, const YAML::Node& node) const {
    if (overridden.count(key)) return "command-line override '" + key + "'";
    if (!node.IsDefined()) return file;
    const auto mark = node.Mark();
    return mark.line >= 0 ? file + ":" + std::to_string(mark.line + 1) : file;
  }
};

// Reads one mapping of the recipe; every key read is remembered so finish() can reject
// the unknown ones.
class Section {
 public:
  Section(const YAML::Node& node, std::string prefix, const Origin& origin)
      : node_(node), prefix_(std::move(prefix)), origin_(origin) {
    if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
      throw UserError(origin_.at(prefix_, node_) + ": key '" + prefix_ +
                      "': expected a mapping of keys");
    }
  }

  bool has(const std::string& key) {
    known_.insert(key);
    return node_.IsMap() && get(key).IsDefined() && !get(key).IsNull();
  }

  void string(const std::string& key, std::string* out, const std::set<std::string>& allowed = {}) {
    if (!has(key)) return;
    *out = scalar(key, "a string");
    if (!allowed.empty() && !allowed.count(*out)) {
      std::string list;
      for (const auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      fail(key, "one of " + list);
    }
  }

  void integer(const std::string& key, int64_t* out, int64_t min_value) {
    if (!has(key)) return;
    const auto text = scalar(key, "an integer");
    try {
      size_t used = 0;
      const long long v = std::stoll(text, &used);
      if (used != text.size()) throw std::invalid_argument(text);
      *out = v;
    } catch (const std::exception&) {
      fail(key, "an integer");
    }
    if (*out < min_value) fail(key, "an integer >= " + std::to_string(min_value));
  }

  void number(const std::string& key, double* out, double min_value, double max_value) {
    if (!has(key)) return;
    const auto text = scalar(key, "a number");
    try {
      size_t used = 0;
      *out = std::stod(text, &used);
      if (used != text.size()) throw std::invalid_argument(text);
    } catch (const std::exception&) {
      fail(key, "a number");
    }
    if (!(*out >= min_value && *out <= max_value)) {
      std::ostringstream range;
      range << "a number in [" << min_value << ", " << max_value << "]";
      fail(key, range.str());
    }
  }

  void boolean(const std::string& key, bool* out) {
    if (!has(key)) return;
    const auto text = scalar(key, "true or false");
    if (text == "true") {
      *out = true;
    } else if (text == "false") {
      *out = false;
    } else {
      fail(key, "true or false");
    }
  }

  // A sequence of strings (a single string is a sequence of one).
  void strings(const std::string& key, std::vector<std::string>* out) {
    if (!has(key)) return;
    const auto value = get(key);
    out->clear();
    if (value.IsScalar()) {
      out->push_back(value.Scalar());
      return;
    }
    if (!value.IsSequence()) fail(key, "a list of strings");
    for (const auto& item : value) {
      if (!item.IsScalar()) fail(key, "a list of strings");
      out->push_back(item.Scalar());
    }
  }

  void numbers(const std::string& key, std::vector<double>* out, double min_value,
               double max_value) {
    std::vector<std::string> texts;
    strings(key, &texts);
    out->clear();
    for (const auto& text : texts) {
      double v = 0;
      try {
        size_t used = 0;
        v = std::stod(text, &used);
        if (used != text.size()) throw std::invalid_argument(text);
      } catch (const std::exception&) {
        fail(key, "a list of numbers");
      }
      if (!(v >= min_value && v <= max_value)) {
        std::ostringstream range;
        range << "numbers in [" << min_value << ", " << max_value << "]";
        fail(key, range.str());
      }
      out->push_back(v);
    }
  }

  // An existing path given as text (not a key of its own): resolved to an absolute path.
  std::string path_in(const std::string& key, const std::string& text) const {
    if (origin_.check_paths && !fs::exists(text)) {
      fail(key, "an existing path ('" + text + "' does not exist)");
    }
    return fs::absolute(text).lexically_normal().string();
  }

  // A path that must exist; resolved to an absolute path.
  void existing_path(const std::string& key, std::string* out) {
    if (!has(key)) return;
    const auto text = scalar(key, "a path");
    if (origin_.check_paths && !fs::exists(text)) {
      fail(key, "an existing path ('" + text + "' does not exist)");
    }
    *out = fs::absolute(text).lexically_normal().string();
  }

  Section child(const std::string& key) {
    known_.insert(key);
    // A missing section is an empty (null) node, not yaml-cpp's invalid "zombie" node.
    const bool present = node_.IsMap() && get(key).IsDefined();
    return Section(present ? get(key) : YAML::Node(), prefix_.empty() ? key : prefix_ + "." + key,
                   origin_);
  }

  void finish() const {
    if (!node_.IsMap()) return;
    for (const auto& item : node_) {
      const auto key = item.first.as<std::string>();
      if (known_.count(key)) continue;
      std::string list;
      for (const auto& k : known_)
        list += (list.empty() ? "" : ", ") + k;
      throw UserError(origin_.at(dotted(key), item.first) + ": unknown key '" + dotted(key) +
                      "' (known keys" + (prefix_.empty() ? "" : " of '" + prefix_ + "'") + ": " +
                      list + ")");
    }
  }

  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    const auto value = node_.IsMap() ? get(key) : YAML::Node();
    if (!value.IsDefined() || value.IsNull()) {
      throw UserError(origin_.at(dotted(key), node_) + ": key '" + dotted(key) +
                      "' is missing: " + "expected " + expected);
    }
    const std::string got = value.IsScalar() ? "'" + value.Scalar() + "'" : "a non-scalar value";
    throw UserError(origin_.at(dotted(key), value) + ": key '" + dotted(key) + "': expected " +
                    expected + ", got " + got);
  }

 private:
  std::string dotted(const std::string& key) const {
    return prefix_.empty() ? key : prefix_ + "." + key;
  }

  // Const lookup: a missing key yields an undefined node instead of being inserted.
  YAML::Node get(const std::string& key) const {
    const YAML::Node& node = node_;
    return node[key];
  }

  std::string scalar(const std::string& key, const std::string& expected) const {
    const auto value = get(key);
    if (!value.IsScalar()) fail(key, expected);
    return value.Scalar();
  }

  YAML::Node node_;
  std::string prefix_;
  const Origin& origin_;
  std::set<std::string> known_;
};

// "a.b.c=value" -> root[a][b][c] = parsed value.
void apply_override(YAML::Node root, const std::string& assignment, Origin* origin) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw UserError("override '" + assignment + "': expected section.key=value");
  }
  const auto key = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw UserError("override '" + assignment + "': " + e.msg);
  }
  std::vector<std::string> parts;
  std::stringstream in(key);
  for (std::string part; std::getline(in, part, '.');) {
    if (part.empty()) throw UserError("override '" + assignment + "': empty key component");
    parts.push_back(part);
  }
  // yaml-cpp nodes are handles: walking with operator[] on a non-const node creates the path.
  std::vector<YAML::Node> chain = {root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (next.IsDefined() && !next.IsNull() && !next.IsMap()) {
      throw UserError("override '" + assignment + "': '" + parts[i] + "' is not a section");
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
  origin->overridden.insert(key);
}

void parse_model(Section s, ModelSection* m) {
  s.existing_path("path", &m->path);
  s.existing_path("config", &m->config);
  s.existing_path("tokenizer", &m->tokenizer);
  s.string("dtype", &m->dtype, {"float32", "bfloat16", "float16"});
  if (m->dtype == "float16") {
    s.fail("dtype",
           "float32 or bfloat16 (float16 training needs loss scaling, which Flywheel "
           "does not do)");
  }
  s.string("device", &m->device);
  s.number("init_std", &m->init_std, 0.0, 1.0);
  if (m->path.empty() == m->config.empty()) {
    s.fail("path", "exactly one of model.path (a checkpoint) and model.config (a new model)");
  }
  if (m->tokenizer.empty()) m->tokenizer = m->path;
  if (m->tokenizer.empty()) s.fail("tokenizer", "a tokenizer directory when model.config is used");
  if (m->device != "cpu" && m->device.rfind("cuda", 0) != 0) s.fail("device", "cpu or cuda[:N]");
  s.finish();
}

void parse_data(Section s, DataSection* d) {
  s.existing_path("train_file", &d->train_file);
  if (d->train_file.empty()) s.fail("train_file", "the training data file");
  s.existing_path("eval_file", &d->eval_file);
  auto& o = d->options;
  s.string("chat_template", &o.chat_template, {"auto", "chatml", "llama2", "tulu", "zephyr"});
  s.integer("max_length", &o.max_length, 2);
  s.string("overlong", &o.overlong, {"drop", "truncate_prompt"});
  s.boolean("skip_invalid", &o.skip_invalid);
  s.boolean("add_bos", &o.add_bos);
  s.boolean("packing", &d->packing);
  s.boolean("group_by_length", &d->group_by_length);
  s.boolean("token_cache", &d->token_cache);
  s.string("cache_dir", &d->cache_dir);
  s.boolean("decontaminate", &d->decontaminate);
  s.integer("decontaminate_ngram", &d->decontaminate_ngram, 1);
  s.number("decontaminate_threshold", &d->decontaminate_threshold, 0.0, 1.0);
  if (d->decontaminate_threshold >= 1.0) s.fail("decontaminate_threshold", "a number in [0, 1)");
  s.finish();
}

void parse_training(Section s, TrainingSection* t) {
  s.integer("epochs", &t->epochs, 1);
  s.integer("max_steps", &t->max_steps, 0);
  s.integer("micro_batch_size", &t->micro_batch_size, 1);
  s.integer("gradient_accumulation_steps", &t->gradient_accumulation_steps, 1);
  s.number("learning_rate", &t->learning_rate, 0.0, 1.0);
  s.number("weight_decay", &t->weight_decay, 0.0, 10.0);
  s.number("adam_beta1", &t->adam_beta1, 0.0, 0.999999);
  s.number("adam_beta2", &t->adam_beta2, 0.0, 0.999999999);
  s.number("adam_eps", &t->adam_eps, 1e-30, 1.0);
  s.string("lr_scheduler", &t->lr_scheduler, {"constant", "cosine", "linear"});
  s.number("warmup_ratio", &t->warmup_ratio, 0.0, 1.0);
  s.integer("warmup_steps", &t->warmup_steps, 0);
  s.number("max_grad_norm", &t->max_grad_norm, 0.0, 1e9);
  s.string("sft_loss_reduction", &t->sft_loss_reduction, {"sum", "token_mean"});
  s.boolean("activation_checkpointing", &t->activation_checkpointing);
  s.integer("logits_chunk_tokens", &t->logits_chunk_tokens, 0);
  s.boolean("share_prefixes", &t->share_prefixes);
  s.finish();
}

void parse_loss(Section s, LossSection* l) {
  s.string("type", &l->type, {"dpo", "dpo_norm", "ipo", "simpo"});
  s.number("beta", &l->beta, 1e-12, 1e6);
  s.number("label_smoothing", &l->label_smoothing, 0.0, 0.4999);
  s.number("rpo_alpha", &l->rpo_alpha, 0.0, 1e6);
  s.number("gamma_beta_ratio", &l->gamma_beta_ratio, -1e6, 1e6);
  s.number("rm_margin", &l->rm_margin, -1e6, 1e6);
  s.number("rm_center_coefficient", &l->rm_center_coefficient, 0.0, 1e6);
  s.finish();
}

void parse_logging(Section s, LoggingSection* l) {
  s.integer("every_steps", &l->every_steps, 1);
  s.integer("eval_every_steps", &l->eval_every_steps, 0);
  s.string("progress", &l->progress, {"auto", "bar", "lines"});
  s.finish();
}

void parse_arena(Section s, ArenaSection* a) {
  s.existing_path("prompts", &a->prompts);
  s.strings("baselines", &a->baselines);
  for (auto& spec : a->baselines) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      s.fail("baselines", "NAME=DIR entries (a player's name and its model directory)");
    spec = spec.substr(0, eq + 1) + s.path_in("baselines", spec.substr(eq + 1));
  }
  s.strings("judges", &a->judges);
  for (auto& spec : a->judges) {
    const size_t colon = spec.find(':');
    const std::string kind = colon == std::string::npos ? "" : spec.substr(0, colon);
    if ((kind != "rm" && kind != "verifier" && kind != "llm") || colon + 1 == spec.size())
      s.fail("judges", "rm:DIR, verifier:NAME or llm:DIR entries");
    if (kind != "verifier") spec = kind + ":" + s.path_in("judges", spec.substr(colon + 1));
  }
  s.numbers("trust", &a->trust, 0.0, 1.0);
  s.integer("annotators", &a->annotators, 1);
  s.number("annotator_temperature", &a->annotator_temperature, 1e-6, 100.0);
  s.boolean("last_judge_decides", &a->last_judge_decides);
  s.string("anchor", &a->anchor);
  s.string("baseline", &a->baseline);
  s.integer("every_steps", &a->every_steps, 0);
  s.integer("previous_checkpoints", &a->previous_checkpoints, -1);
  s.integer("bootstrap", &a->bootstrap, 0);
  if (a->bootstrap > 100000) s.fail("bootstrap", "at most 100000 rounds");
  s.string("bootstrap_unit", &a->bootstrap_unit, {"battle", "prompt"});
  s.boolean("style_control", &a->style_control);
  s.integer("max_new_tokens", &a->max_new_tokens, 1);
  s.number("temperature", &a->temperature, 0.0, 100.0);
  s.number("tie_band", &a->tie_band, 0.0, 1e9);
  s.integer("judge_max_new_tokens", &a->judge_max_new_tokens, 1);
  s.existing_path("judge_template", &a->judge_template);
  s.boolean("plot", &a->plot);
  if (a->enabled() && a->judges.empty())
    s.fail("judges", "a judge (rm:DIR, verifier:NAME, llm:DIR)");
  if (!a->enabled() && (!a->judges.empty() || !a->baselines.empty()))
    s.fail("prompts", "the arena's prompts (JSONL) with judges and baselines");
  const bool cascade = a->judges.size() > 1 || !a->trust.empty();
  if (cascade && a->trust.size() != a->judges.size())
    s.fail("trust", "one threshold per judge of the cascade (" + std::to_string(a->judges.size()) +
                        " judges)");
  if (cascade) {
    for (const auto& j : a->judges)
      if (j.rfind("llm:", 0) != 0)
        s.fail("judges", "llm:DIR judges only in a cascade (with trust)");
  }
  // Names: the baselines', distinct, none a checkpoint's (step-N); the anchor one of them or
  // step-0 (rated first, so the scale never moves); the LC baseline one of them.
  std::set<std::string> names;
  for (const auto& spec : a->baselines) {
    const std::string name = spec.substr(0, spec.find('='));
    if (name.rfind("step-", 0) == 0)
      s.fail("baselines", "names other than step-N (how the run's checkpoints are named)");
    if (!names.insert(name).second) s.fail("baselines", "distinct names ('" + name + "' twice)");
  }
  if (!a->anchor.empty()) {
    const size_t eq = a->anchor.rfind('=');
    double rating = 0;
    try {
      size_t used = 0;
      if (eq == std::string::npos || eq == 0) throw std::invalid_argument(a->anchor);
      rating = std::stod(a->anchor.substr(eq + 1), &used);
      if (used != a->anchor.size() - eq - 1 || !std::isfinite(rating))
        throw std::invalid_argument(a->anchor);
    } catch (const std::exception&) {
      s.fail("anchor", "NAME=RATING (e.g. base=1000)");
    }
    const std::string name = a->anchor.substr(0, eq);
    if (name != "step-0" && !names.count(name))
      s.fail("anchor", "a baseline or step-0 (the starting model) as NAME");
  }
  if (!a->baseline.empty() && !names.count(a->baseline))
    s.fail("baseline", "one of eval.arena.baselines");
  if (a->enabled() && a->baselines.empty() && a->previous_checkpoints == 0)
    s.fail("previous_checkpoints",
           "-1 or a count >= 1 without baselines (with 0 a checkpoint would play nobody)");
  s.finish();
}

void parse_eval(Section s, EvalSection* e) {
  parse_arena(s.child("arena"), &e->arena);
  s.existing_path("generation_file", &e->generation_file);
  s.string("verifier", &e->verifier);
  s.integer("max_new_tokens", &e->max_new_tokens, 1);
  s.integer("max_samples", &e->max_samples, 1);
  s.integer("batch_size", &e->batch_size, 1);
  if (e->generation_file.empty() != e->verifier.empty()) {
    s.fail("verifier", "eval.generation_file and eval.verifier together");
  }
  s.finish();
}

void parse_checkpoint(Section s, CheckpointSection* c) {
  s.integer("every_steps", &c->every_steps, 0);
  s.integer("keep_last", &c->keep_last, 1);
  s.string("keep_best", &c->keep_best, {"arena"});
  s.finish();
}

void parse_distributed(Section s, DistributedSection* d) {
  s.integer("zero_stage", &d->zero_stage, 0);
  if (d->zero_stage < 0 || d->zero_stage > 3) s.fail("zero_stage", "0, 1, 2 or 3");
  s.number("bucket_mb", &d->bucket_mb, 0.001, 1e6);
  s.string("reduce_dtype", &d->reduce_dtype, {"float32", "bfloat16"});
  s.integer("timeout_s", &d->timeout_s, 1);
  s.integer("rendezvous_timeout_s", &d->rendezvous_timeout_s, 1);
  s.finish();
}

void parse_rl(Section s, RlSection* rl, const std::string& trainer) {
  s.integer("iterations", &rl->iterations, 1);
  s.integer("prompts_per_iteration", &rl->prompts_per_iteration, 1);
  s.integer("group_size", &rl->group_size, trainer == "ppo" ? 1 : 2);
  s.integer("max_new_tokens", &rl->max_new_tokens, 1);
  s.number("temperature", &rl->temperature, 1e-6, 100.0);
  s.number("top_p", &rl->top_p, 1e-6, 1.0);
  s.integer("top_k", &rl->top_k, 0);
  s.integer("epochs", &rl->epochs, 1);
  s.integer("minibatches", &rl->minibatches, 1);
  s.number("beta", &rl->beta, 0.0, 1e6);
  s.number("clip", &rl->clip, 1e-6, 1e6);
  // RLOO's and PPO's advantages are their own (the names a resolved recipe records for them are
  // accepted back, so a run's config.yaml loads again).
  if (trainer == "rloo") {
    rl->advantage = "rloo";
    s.string("advantage", &rl->advantage, {"rloo"});
  } else if (trainer == "ppo") {
    rl->advantage = "gae";
    s.string("advantage", &rl->advantage, {"gae"});
  } else {
    s.string("advantage", &rl->advantage, {"centered", "standard"});
  }
  s.string("loss_aggregation", &rl->loss_aggregation, {"sequence_mean", "token_mean"});
  s.string("verifier", &rl->verifier);
  s.number("success_reward", &rl->success_reward, -1e9, 1e9);
  s.number("no_eos_penalty", &rl->no_eos_penalty, -1e9, 1e9);
  s.integer("kv_cache_mb", &rl->kv_cache_mb, 0);
  s.string("reference", &rl->reference, {"initial", "iteration"});
  s.existing_path("reward_model", &rl->reward_model);
  s.number("reward_model_weight", &rl->reward_model_weight, -1e9, 1e9);
  if (trainer != "online_dpo" && s.has("reference"))
    s.fail("reference", "no reference with trainer: " + trainer + " (online_dpo only)");
  s.existing_path("value_model", &rl->value_model);
  s.number("value_learning_rate", &rl->value_learning_rate, 0.0, 1.0);
  s.number("value_clip", &rl->value_clip, 1e-6, 1e6);
  s.number("gamma", &rl->gamma, 0.0, 1.0);
  s.number("lam", &rl->lam, 0.0, 1.0);
  s.string("kl_estimator", &rl->kl_estimator, {"k1", "k3"});
  s.number("target_kl", &rl->target_kl, 0.0, 1e6);
  s.number("kl_horizon", &rl->kl_horizon, 1.0, 1e12);
  if (trainer != "ppo") {
    for (const char* key : {"value_model", "value_learning_rate", "value_clip", "gamma", "lam",
                            "kl_estimator", "target_kl", "kl_horizon"}) {
      if (s.has(key))
        s.fail(key, "no " + std::string(key) + " with trainer: " + trainer + " (ppo only)");
    }
  } else {
    if (rl->loss_aggregation != "token_mean")
      s.fail("loss_aggregation", "token_mean with trainer: ppo (per-token advantages)");
    // A shorter horizon would move β by more than 20% an iteration (or below zero).
    const int64_t responses = rl->prompts_per_iteration * rl->group_size;
    if (rl->target_kl > 0 && rl->kl_horizon < static_cast<double>(responses)) {
      s.fail("kl_horizon", "at least an iteration's responses (" + std::to_string(responses) +
                               ") with target_kl > 0");
    }
  }
  s.finish();
}

}  // namespace

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides,
                   bool check_paths) {
  if (!fs::is_regular_file(path)) throw UserError("recipe not found: " + path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw UserError(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  Origin origin{path, {}, check_paths};
  for (const auto& o : overrides)
    apply_override(root, o, &origin);

  Recipe r;
  r.source = fs::absolute(path).lexically_normal().string();
  Section top(root, "", origin);
  top.string("trainer", &r.trainer,
             {"dpo", "grpo", "online_dpo", "ppo", "reward_model", "rloo", "sft"});
  if (r.trainer.empty())
    top.fail("trainer", "sft, dpo, reward_model, ppo, grpo, rloo or online_dpo");
  int64_t seed = static_cast<int64_t>(r.seed);
  top.integer("seed", &seed, 0);
  r.seed = static_cast<uint64_t>(seed);
  top.string("output_dir", &r.output_dir);
  if (r.output_dir.empty()) top.fail("output_dir", "the run directory");
  parse_model(top.child("model"), &r.model);
  parse_data(top.child("data"), &r.data);
  parse_training(top.child("training"), &r.training);
  parse_loss(top.child("loss"), &r.loss);
  parse_logging(top.child("logging"), &r.logging);
  parse_eval(top.child("eval"), &r.eval);
  parse_checkpoint(top.child("checkpoint"), &r.checkpoint);
  parse_distributed(top.child("distributed"), &r.distributed);
  if (r.is_rl()) {
    parse_rl(top.child("rl"), &r.rl, r.trainer);
    if (r.distributed.zero_stage == 3) {
      top.fail("distributed",
               "zero_stage 0, 1 or 2 with an RL trainer (the rollout engine "
               "generates from whole parameters)");
    }
  } else if (top.has("rl")) {
    top.fail("rl", "no rl section with trainer: " + r.trainer + " (ppo, grpo, rloo, online_dpo)");
  }
  top.finish();
  if (r.eval.arena.enabled() && r.trainer == "reward_model")
    top.fail("eval", "no arena with trainer: reward_model (the arena's players generate)");
  if (r.checkpoint.keep_best == "arena" && !r.eval.arena.enabled())
    top.fail("checkpoint", "eval.arena (its prompts, judges, baselines) with keep_best: arena");
  if (r.data.packing && r.trainer != "sft") top.fail("data", "packing only with trainer: sft");
  return r;
}

std::string recipe_to_yaml(const Recipe& r) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "trainer" << YAML::Value << r.trainer;
  out << YAML::Key << "seed" << YAML::Value << r.seed;
  out << YAML::Key << "output_dir" << YAML::Value << r.output_dir;
  auto section = [&](const char* name, const std::function<void()>& body) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    body();
    out << YAML::EndMap;
  };
  auto kv = [&](const char* key, const auto& value) {
    out << YAML::Key << key << YAML::Value << value;
  };
  section("model", [&] {
    if (!r.model.path.empty()) kv("path", r.model.path);
    if (!r.model.config.empty()) kv("config", r.model.config);
    kv("tokenizer", r.model.tokenizer);
    kv("dtype", r.model.dtype);
    kv("device", r.model.device);
    kv("init_std", r.model.init_std);
  });
  section("data", [&] {
    kv("train_file", r.data.train_file);
    if (!r.data.eval_file.empty()) kv("eval_file", r.data.eval_file);
    kv("chat_template", r.data.options.chat_template);
    kv("max_length", r.data.options.max_length);
    kv("overlong", r.data.options.overlong);
    kv("skip_invalid", r.data.options.skip_invalid);
    kv("add_bos", r.data.options.add_bos);
    kv("packing", r.data.packing);
    kv("group_by_length", r.data.group_by_length);
    kv("token_cache", r.data.token_cache);
    if (!r.data.cache_dir.empty()) kv("cache_dir", r.data.cache_dir);
    kv("decontaminate", r.data.decontaminate);
    if (r.data.decontaminate) {
      kv("decontaminate_ngram", r.data.decontaminate_ngram);
      kv("decontaminate_threshold", r.data.decontaminate_threshold);
    }
  });
  section("training", [&] {
    const auto& t = r.training;
    kv("epochs", t.epochs);
    kv("max_steps", t.max_steps);
    kv("micro_batch_size", t.micro_batch_size);
    kv("gradient_accumulation_steps", t.gradient_accumulation_steps);
    kv("learning_rate", t.learning_rate);
    kv("weight_decay", t.weight_decay);
    kv("adam_beta1", t.adam_beta1);
    kv("adam_beta2", t.adam_beta2);
    kv("adam_eps", t.adam_eps);
    kv("lr_scheduler", t.lr_scheduler);
    kv("warmup_ratio", t.warmup_ratio);
    kv("warmup_steps", t.warmup_steps);
    kv("max_grad_norm", t.max_grad_norm);
    kv("sft_loss_reduction", t.sft_loss_reduction);
    kv("activation_checkpointing", t.activation_checkpointing);
    kv("logits_chunk_tokens", t.logits_chunk_tokens);
    kv("share_prefixes", t.share_prefixes);
  });
  section("loss", [&] {
    kv("type", r.loss.type);
    kv("beta", r.loss.beta);
    kv("label_smoothing", r.loss.label_smoothing);
    kv("rpo_alpha", r.loss.rpo_alpha);
    kv("gamma_beta_ratio", r.loss.gamma_beta_ratio);
    kv("rm_margin", r.loss.rm_margin);
    kv("rm_center_coefficient", r.loss.rm_center_coefficient);
  });
  section("logging", [&] {
    kv("every_steps", r.logging.every_steps);
    kv("eval_every_steps", r.logging.eval_every_steps);
    kv("progress", r.logging.progress);
  });
  if (!r.eval.generation_file.empty() || r.eval.arena.enabled()) {
    section("eval", [&] {
      if (!r.eval.generation_file.empty()) {
        kv("generation_file", r.eval.generation_file);
        kv("verifier", r.eval.verifier);
        kv("max_new_tokens", r.eval.max_new_tokens);
        kv("max_samples", r.eval.max_samples);
        kv("batch_size", r.eval.batch_size);
      }
      if (!r.eval.arena.enabled()) return;
      const auto& a = r.eval.arena;
      section("arena", [&] {
        kv("prompts", a.prompts);
        kv("baselines", a.baselines);
        kv("judges", a.judges);
        if (!a.trust.empty()) {
          kv("trust", a.trust);
          kv("annotators", a.annotators);
          kv("annotator_temperature", a.annotator_temperature);
          kv("last_judge_decides", a.last_judge_decides);
        }
        if (!a.anchor.empty()) kv("anchor", a.anchor);
        if (!a.baseline.empty()) kv("baseline", a.baseline);
        kv("every_steps", a.every_steps);
        kv("previous_checkpoints", a.previous_checkpoints);
        kv("bootstrap", a.bootstrap);
        kv("bootstrap_unit", a.bootstrap_unit);
        kv("style_control", a.style_control);
        kv("max_new_tokens", a.max_new_tokens);
        kv("temperature", a.temperature);
        kv("tie_band", a.tie_band);
        kv("judge_max_new_tokens", a.judge_max_new_tokens);
        if (!a.judge_template.empty()) kv("judge_template", a.judge_template);
        kv("plot", a.plot);
      });
    });
  }
  if (r.is_rl()) {
    section("rl", [&] {
      const auto& l = r.rl;
      kv("iterations", l.iterations);
      kv("prompts_per_iteration", l.prompts_per_iteration);
      kv("group_size", l.group_size);
      kv("max_new_tokens", l.max_new_tokens);
      kv("temperature", l.temperature);
      kv("top_p", l.top_p);
      kv("top_k", l.top_k);
      kv("epochs", l.epochs);
      kv("minibatches", l.minibatches);
      kv("beta", l.beta);
      kv("clip", l.clip);
      kv("advantage", l.advantage);
      kv("loss_aggregation", l.loss_aggregation);
      if (!l.verifier.empty()) kv("verifier", l.verifier);
      kv("success_reward", l.success_reward);
      kv("no_eos_penalty", l.no_eos_penalty);
      kv("kv_cache_mb", l.kv_cache_mb);
      if (r.trainer == "online_dpo") kv("reference", l.reference);
      if (!l.reward_model.empty()) {
        kv("reward_model", l.reward_model);
        kv("reward_model_weight", l.reward_model_weight);
      }
      if (r.trainer == "ppo") {
        if (!l.value_model.empty()) kv("value_model", l.value_model);
        kv("value_learning_rate", l.value_learning_rate);
        kv("value_clip", l.value_clip);
        kv("gamma", l.gamma);
        kv("lam", l.lam);
        kv("kl_estimator", l.kl_estimator);
        kv("target_kl", l.target_kl);
        kv("kl_horizon", l.kl_horizon);
      }
    });
  }
  section("checkpoint", [&] {
    kv("every_steps", r.checkpoint.every_steps);
    kv("keep_last", r.checkpoint.keep_last);
    if (!r.checkpoint.keep_best.empty()) kv("keep_best", r.checkpoint.keep_best);
  });
  section("distributed", [&] {
    kv("zero_stage", r.distributed.zero_stage);
    kv("bucket_mb", r.distributed.bucket_mb);
    kv("reduce_dtype", r.distributed.reduce_dtype);
    kv("timeout_s", r.distributed.timeout_s);
    kv("rendezvous_timeout_s", r.distributed.rendezvous_timeout_s);
  });
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace flywheel
