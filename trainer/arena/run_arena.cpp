#include "trainer/arena/run_arena.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer/arena/answers.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/eval/battles.h"
#include "trainer/eval/bootstrap.h"
#include "trainer/eval/leaderboard.h"
#include "trainer/eval/length_controlled.h"
#include "trainer/eval/rating_plot.h"
#include "trainer/model/device.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kStepPrefix = "step-";

// The step of a checkpoint player ("step-40" -> 40), or nullopt for any other name.
std::optional<int64_t> step_of(const std::string& player) {
  if (player.rfind(kStepPrefix, 0) != 0) return std::nullopt;
  const std::string digits = player.substr(std::string(kStepPrefix).size());
  if (digits.empty() || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoll(digits);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string json_line(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

// The battle lines of `path` (as written: a rewrite keeps them byte for byte) whose checkpoint
// players were all rated at or before step `last`.
std::string battles_up_to(const std::string& path, int64_t last) {
  std::ifstream in(path);
  std::string kept;
  int64_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object())
      throw UserError(path + ":" + std::to_string(number) + ": expected a battle (JSON object)");
    bool keep = true;
    for (const char* side : {"model_a", "model_b"}) {
      const auto step = row.contains(side) && row[side].is_string()
                            ? step_of(row[side].get<std::string>())
                            : std::nullopt;
      keep = keep && !(step && *step > last);
    }
    if (keep) kept += line + "\n";
  }
  return kept;
}

int64_t arena_every(const Recipe& recipe) {
  return recipe.eval.arena.every_steps > 0 ? recipe.eval.arena.every_steps
                                           : recipe.logging.eval_every_steps;
}

double finite_or_nan(double v) {
  return std::isfinite(v) ? v : kNaN;
}

}  // namespace

struct RunArena::Rated {
  Leaderboard board;

  // The player's row, or null when it has no battles.
  const LeaderboardRow* row(const std::string& name) const {
    for (const auto& r : board.rows)
      if (r.name == name) return &r;
    return nullptr;
  }
};

std::string RunArena::player_of(int64_t step) {
  return kStepPrefix + std::to_string(step);
}

void RunArena::check(const Recipe& recipe) {
  const ArenaSection& arena = recipe.eval.arena;
  const std::string where = recipe.source + ": eval.arena";
  if (read_arena_prompts(arena.prompts).empty())
    throw UserError(where + ".prompts: " + arena.prompts + " holds no prompt");
  for (const auto& text : arena.judges) {
    const JudgeSpec judge = parse_judge_spec(text);
    if (judge.kind == JudgeKind::kVerifier) find_verifier(judge.target);
  }
  if (!arena.judge_template.empty()) {
    const std::string tmpl = read_text(arena.judge_template);
    check_judge_template(tmpl, arena.judge_template);
    if (!template_verdict_format(tmpl))
      throw UserError(arena.judge_template +
                      " shows neither [[A]] (mt-bench) nor [[A>B]] (arena-hard) verdicts");
  }
  if (arena.plot && !gnuplot_available())
    throw UserError(where +
                    ".plot needs gnuplot (scripts/install-deps.sh installs gnuplot-nox); or set "
                    "eval.arena.plot: false");
}

RunArena::RunArena(const Recipe& recipe, LlamaForCausalLM policy)
    : arena_(recipe.eval.arena),
      dir_((fs::path(recipe.output_dir) / "arena").string()),
      checkpoints_((fs::path(recipe.output_dir) / "checkpoints").string()),
      every_(arena_every(recipe)),
      keep_best_(recipe.checkpoint.keep_best == "arena"),
      seed_(recipe.seed),
      policy_(std::move(policy), Tokenizer::from_dir(recipe.model.tokenizer), "the policy") {
  check(recipe);
  prompts_ = read_arena_prompts(arena_.prompts);
  reply_.max_new_tokens = arena_.max_new_tokens;
  reply_.sampling.temperature = arena_.temperature;
  reply_.sampling.validate(recipe.source + ": eval.arena.");
  reply_.seed = recipe.seed;
  reply_.chat_template = recipe.data.options.chat_template;
  reply_.plain_text_prompts = true;
  reply_.add_bos = recipe.data.options.add_bos;
  load_.device = parse_device(recipe.model.device, "model.device");

  // Names and the anchor were checked with the recipe.
  for (const auto& spec : arena_.baselines) {
    const size_t eq = spec.find('=');
    baselines_.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
  }
  lc_baseline_ =
      arena_.baseline.empty() && !baselines_.empty() ? baselines_.front().first : arena_.baseline;
  if (!arena_.anchor.empty()) {
    const size_t eq = arena_.anchor.rfind('=');
    anchor_ = arena_.anchor.substr(0, eq);
    anchor_rating_ = std::stod(arena_.anchor.substr(eq + 1));
  } else {
    anchor_ = baselines_.empty() ? player_of(0) : baselines_.front().first;
  }

  judge_options_.load = load_;
  judge_options_.tie_band = arena_.tie_band;
  judge_options_.reply.max_new_tokens = arena_.judge_max_new_tokens;
  if (!arena_.judge_template.empty()) {
    judge_options_.judge_template = read_text(arena_.judge_template);
    judge_options_.verdict_format = *template_verdict_format(judge_options_.judge_template);
  }
}

StepEvaluation RunArena::hook() {
  StepEvaluation h;
  h.run = [this](int64_t step) { return evaluate(step); };
  h.every = every_;
  h.resume_at = [this](int64_t step) { resume_at(step); };
  if (keep_best_) h.best_step = [this] { return best_step(); };
  return h;
}

StepEvaluation RunArena::follower_hook(const Recipe& recipe) {
  StepEvaluation h;
  h.run = [](int64_t) { return Metrics{}; };
  h.every = arena_every(recipe);
  if (recipe.checkpoint.keep_best == "arena") h.best_step = [] { return std::optional<int64_t>(); };
  return h;
}

const std::map<std::string, ArenaAnswer>& RunArena::answers_of(const std::string& player) {
  auto it = answers_.find(player);
  if (it == answers_.end())
    it = answers_.emplace(player, read_answers(answers_path(dir_, player))).first;
  return it->second;
}

void RunArena::answer_baselines() {
  for (const auto& [name, dir] : baselines_) {
    // The cache holds the answers of this model under these settings, or is answered again.
    const std::string path = answers_path(dir_, name);
    const std::string settings_path = dir_ + "/answers/" + name + ".settings.json";
    const std::string settings = nlohmann::json{{"model", dir},
                                                {"max_new_tokens", reply_.max_new_tokens},
                                                {"temperature", reply_.sampling.temperature},
                                                {"seed", reply_.seed},
                                                {"chat_template", reply_.chat_template},
                                                {"add_bos", reply_.add_bos}}
                                     .dump(2) +
                                 "\n";
    if (answers_cached(path, prompts_) && fs::exists(settings_path) &&
        read_text(settings_path) == settings)
      continue;
    ChatModel model(dir, load_);
    write_answers(path, answer_prompts(model, name, prompts_, reply_));
    write_file_atomic(settings_path, settings);
    answers_.erase(name);
  }
}

std::vector<std::string> RunArena::opponents(int64_t step) const {
  std::vector<std::string> out;
  for (const auto& b : baselines_)
    out.push_back(b.first);
  std::vector<int64_t> earlier;
  for (int64_t s : steps_)
    if (s < step) earlier.push_back(s);
  const auto keep =
      arena_.previous_checkpoints < 0
          ? earlier.size()
          : std::min(earlier.size(), static_cast<size_t>(arena_.previous_checkpoints));
  for (size_t i = earlier.size() - keep; i < earlier.size(); ++i)
    out.push_back(player_of(earlier[i]));
  return out;
}

// Plays step's checkpoint against each opponent on every prompt, appends the battles to
// battles.jsonl; returns the judge's abstention rate.
Metrics RunArena::judge_round(int64_t step, const std::vector<std::string>& opponents) {
  const auto& mine = answers_of(player_of(step));
  std::vector<Matchup> matchups;
  for (const auto& opponent : opponents) {
    const auto& theirs = answers_of(opponent);
    for (const auto& p : prompts_) {
      const auto a = theirs.find(p.question_id);
      if (a == theirs.end())
        throw UserError(answers_path(dir_, opponent) + ": no answer to question " + p.question_id +
                        " (delete the file to answer the prompts again)");
      matchups.push_back({&a->second, &mine.at(p.question_id)});
    }
  }
  if (matchups.empty()) return {};
  std::vector<JudgedGame> games;
  double abstention = 0;
  std::string judge_name;
  if (arena_.trust.empty()) {
    const JudgeSpec judge = parse_judge_spec(arena_.judges.front());
    judge_name = judge.text;
    games = judge_matchups(judge, matchups, judge_options_);
    int64_t parsed = 0;
    for (const auto& g : games)
      parsed += g.verdict.verdict.has_value();
    abstention = 1.0 - static_cast<double>(parsed) / static_cast<double>(games.size());
  } else {
    std::vector<CascadeStage> stages;
    judge_name = "cascade";
    for (size_t k = 0; k < arena_.judges.size(); ++k) {
      stages.push_back({parse_judge_spec(arena_.judges[k]), arena_.trust[k]});
      judge_name += (k == 0 ? ":" : ",") + arena_.judges[k];
    }
    CascadeOptions cascade;
    cascade.annotators = arena_.annotators;
    cascade.temperature = arena_.annotator_temperature;
    cascade.last_decides = arena_.last_judge_decides;
    CascadeResult result = judge_cascade(stages, matchups, judge_options_, cascade);
    abstention = static_cast<double>(result.abstained) / static_cast<double>(matchups.size());
    games = std::move(result.games);
  }
  // A round replayed (a resumed run's, or a fresh run's over an old directory) replaces the
  // battles of its step and later ones.
  const std::string path = dir_ + "/battles.jsonl";
  std::string text = battles_up_to(path, step - 1);
  for (const auto& g : games)
    if (g.verdict.verdict) text += json_line(battle_json(g, judge_name));
  write_file_atomic(path, text);
  return {{"arena/abstention_rate", abstention}};
}

RunArena::Rated RunArena::rate(int bootstrap_rounds) const {
  BattleLog log;
  read_battles(dir_ + "/battles.jsonl", &log);
  RatingOptions options;
  options.style_control = arena_.style_control;
  if (log.find_player(anchor_)) {
    options.anchor = anchor_;
    options.anchor_rating = anchor_rating_;
  }
  BootstrapOptions boot;
  boot.rounds = bootstrap_rounds;
  boot.seed = seed_;
  boot.unit = arena_.bootstrap_unit == "battle" ? ResampleUnit::kBattle : ResampleUnit::kPrompt;
  Rated out;
  out.board = rate_log(log, options, boot,
                       lc_baseline_.empty() || !log.find_player(lc_baseline_)
                           ? std::nullopt
                           : std::optional<std::string>(lc_baseline_))
                  .board;
  return out;
}

Metrics RunArena::evaluate(int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  fs::create_directories(dir_ + "/answers");
  answer_baselines();
  const std::string me = player_of(step);
  answers_.erase(me);
  write_answers(answers_path(dir_, me), answer_prompts(policy_, me, prompts_, reply_));
  Metrics metrics = judge_round(step, opponents(step));
  std::erase_if(steps_, [step](int64_t s) { return s >= step; });
  steps_.push_back(step);
  if (metrics.empty()) return {};  // nobody to play yet (no baselines, the first round)

  // A log whose players fall apart into groups that never met (every game of a round abstained
  // on) has no common scale: said, and the run goes on.
  Rated rated;
  try {
    rated = rate(static_cast<int>(arena_.bootstrap));
  } catch (const UserError& e) {
    std::fprintf(stderr, "warning: eval.arena at step %lld: no ratings: %s\n",
                 static_cast<long long>(step), e.what());
    return metrics;
  }
  if (const LeaderboardRow* mine = rated.row(me)) {
    const LeaderboardRow& r = *mine;
    metrics["arena/rating"] = r.rating;
    metrics["arena/lower"] = finite_or_nan(r.lower);
    metrics["arena/upper"] = finite_or_nan(r.upper);
    metrics["arena/rank"] = r.rank;
  }
  metrics["arena/players"] = static_cast<double>(rated.board.rows.size());
  if (!lc_baseline_.empty()) {
    // Every checkpoint's games against the baseline, each fitted alone (the instruction
    // difficulty from the other checkpoints' games, length_controlled.h).
    const auto read = read_baseline_games({dir_ + "/battles.jsonl"}, lc_baseline_, true);
    std::map<std::string, int64_t> per_player;
    for (const auto& g : read.games)
      ++per_player[g.player];
    LengthControlOptions lc;
    lc.only = {me};
    std::vector<BaselineGame> games;
    for (const auto& g : read.games)
      if (step_of(g.player) && per_player[g.player] >= lc.fit.folds) games.push_back(g);
    const auto mine_count = per_player.count(me) ? per_player[me] : 0;
    if (mine_count > 0) {
      std::vector<BaselineGame> own;
      for (const auto& g : read.games)
        if (g.player == me) own.push_back(g);
      metrics["arena/win_rate"] = raw_win_rate(own).win_rate;
    }
    if (mine_count >= lc.fit.folds) {
      for (const auto& r : length_controlled_win_rates(games, lc)) {
        if (r.player != me) continue;
        metrics["arena/lc_win_rate"] = r.lc_win_rate;
        metrics["arena/lc_standard_error"] = finite_or_nan(r.lc_standard_error);
      }
    }
  }
  best_ = best_of(rated, step);
  write_reports(rated);
  metrics["arena/seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return metrics;
}

void RunArena::write_reports(const Rated& rated) const {
  ordered_json out = leaderboard_json(rated.board);
  out["anchor"] = {{"name", anchor_}, {"rating", anchor_rating_}};
  out["bootstrap"] = {
      {"rounds", arena_.bootstrap}, {"unit", arena_.bootstrap_unit}, {"seed", seed_}};
  std::vector<StepRating> by_step;
  ordered_json steps = ordered_json::array();
  for (int64_t s : steps_) {
    const LeaderboardRow* row = rated.row(player_of(s));
    if (row == nullptr) continue;
    const LeaderboardRow& r = *row;
    by_step.push_back({s, r});
    steps.push_back({{"step", s},
                     {"player", r.name},
                     {"rating", r.rating},
                     {"lower", std::isfinite(r.lower) ? ordered_json(r.lower) : ordered_json()},
                     {"upper", std::isfinite(r.upper) ? ordered_json(r.upper) : ordered_json()},
                     {"rank", r.rank}});
  }
  out["steps"] = steps;
  if (best_) {
    const LeaderboardRow& r = *rated.row(player_of(*best_));
    out["best"] = {
        {"step", *best_},
        {"player", r.name},
        {"rating", r.rating},
        {"checkpoint",
         keep_best_ ? ordered_json((fs::path(checkpoints_) / checkpoint_name(*best_)).string())
                    : ordered_json()}};
  }
  write_file_atomic(dir_ + "/ratings.json", out.dump(2) + "\n");
  write_file_atomic(dir_ + "/leaderboard.md", leaderboard_markdown(rated.board));
  if (!arena_.plot) return;
  std::vector<LeaderboardRow> fixed;
  for (const auto& b : baselines_)
    if (const LeaderboardRow* row = rated.row(b.first)) fixed.push_back(*row);
  // A plot that fails (gnuplot gone mid-run) is reported; the run goes on.
  try {
    plot_leaderboard(rated.board, dir_ + "/ratings.png", "arena ratings", "eval.arena.plot");
    plot_ratings_by_step(by_step, fixed, dir_ + "/ratings_by_step.png",
                         "arena rating by training step", "eval.arena.plot");
  } catch (const UserError& e) {
    std::fprintf(stderr, "warning: %s\n", e.what());
  }
}

void RunArena::resume_at(int64_t step) {
  steps_.clear();
  answers_.clear();
  if (fs::is_directory(dir_ + "/answers")) {
    for (const auto& e : fs::directory_iterator(dir_ + "/answers")) {
      const auto s = step_of(e.path().stem().string());
      if (!s || e.path().extension() != ".jsonl") continue;
      if (*s > step) {
        fs::remove(e.path());
      } else {
        steps_.push_back(*s);
      }
    }
  }
  std::sort(steps_.begin(), steps_.end());
  const std::string path = dir_ + "/battles.jsonl";
  if (!fs::exists(path)) return;
  write_file_atomic(path, battles_up_to(path, step));
  // The best so far, from the point ratings (its checkpoint is kept from here on).
  BattleLog log;
  read_battles(path, &log);
  best_ = log.battles().empty() ? std::nullopt : best_of(rate(0), std::nullopt);
}

std::optional<int64_t> RunArena::best_of(const Rated& rated, std::optional<int64_t> saving) const {
  // Among the checkpoints on disk, and the one about to be saved: a refit may prefer a step
  // pruned while it was not the best. Step 0 is the starting model, not a checkpoint.
  // A later step replaces the best only when rated clearly higher: checkpoints that won every
  // game are fitted equal but for float rounding, and the earliest of them is kept.
  std::optional<int64_t> best;
  double best_rating = -std::numeric_limits<double>::infinity();
  for (int64_t s : steps_) {
    const LeaderboardRow* row = rated.row(player_of(s));
    const bool on_disk =
        s == saving || fs::is_directory(fs::path(checkpoints_) / checkpoint_name(s));
    if (s > 0 && on_disk && row != nullptr && (!best || clearly_above(row->rating, best_rating))) {
      best_rating = row->rating;
      best = s;
    }
  }
  return best;
}

std::string arena_judge_warning(const Recipe& recipe) {
  const auto same_dir = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    return !a.empty() && !b.empty() && fs::equivalent(a, b, ec);
  };
  // The verifiers an RL run rewards with: rl.verifier, else each training row's "dataset".
  std::set<std::string> rewarded;
  if (recipe.is_rl() && !recipe.rl.verifier.empty()) rewarded.insert(recipe.rl.verifier);
  if (recipe.is_rl() && recipe.rl.verifier.empty() && !recipe.data.train_file.empty()) {
    JsonlReader reader(recipe.data.train_file);
    for (JsonlRecord rec; reader.next(&rec);) {
      const auto& row = rec.value;
      if (row.is_object() && row.contains("dataset") && row["dataset"].is_string())
        rewarded.insert(row["dataset"].get<std::string>());
    }
  }
  for (const auto& text : recipe.eval.arena.judges) {
    const JudgeSpec judge = parse_judge_spec(text);
    const bool same =
        (judge.kind == JudgeKind::kRewardModel && same_dir(judge.target, recipe.rl.reward_model)) ||
        (judge.kind == JudgeKind::kVerifier && rewarded.contains(judge.target));
    if (same)
      return "eval.arena judges with " + judge.text +
             ", the reward this run trains on: the arena then rates how well the policy "
             "optimizes its own reward (reward hacking included), not an independent judgment";
  }
  return "";
}

}  // namespace flywheel
