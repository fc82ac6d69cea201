// A small preference and SFT data set in the stories260K vocabulary, for end-to-end training
// tests: DIR/sft.jsonl (prompt/completion) and DIR/pairs.jsonl (prompt/chosen/rejected), 40
// records each.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace flywheel::testing {

inline void write_story_data(const std::string& dir) {
  const std::vector<std::pair<std::string, std::string>> stories = {
      {"Once upon a time, there was a", " little girl named Lily."},
      {"The dog wanted to", " play in the park with his ball."},
      {"One day, Tom saw a", " big red ball in the garden."},
      {"The cat was very", " happy and sleepy in the sun."},
      {"Lily and her mom went to", " the store to buy some milk."},
      {"The bird flew", " up into the blue sky."},
      {"Ben had a toy", " car that he loved very much."},
      {"The sun was", " shining and the flowers were pretty."},
  };
  std::ofstream sft(dir + "/sft.jsonl"), pairs(dir + "/pairs.jsonl");
  for (int copy = 0; copy < 5; ++copy) {
    for (size_t i = 0; i < stories.size(); ++i) {
      const auto& [p, c] = stories[i];
      sft << nlohmann::json{{"prompt", p}, {"completion", c}}.dump() << "\n";
      pairs << nlohmann::json{{"prompt", p},
                              {"chosen", c},
                              {"rejected", stories[(i + 3) % stories.size()].second}}
                   .dump()
            << "\n";
    }
  }
}

}  // namespace flywheel::testing
