// `flywheel tokenize --model DIR --in FILE.jsonl --out FILE.jsonl`: {"text"} lines become the
// same lines (keys in their order) plus "ids" and "tokens"; with --decode, {"ids"} lines gain
// "text". DIR needs only the tokenizer files. Lines are encoded in batches by --threads
// threads and written in input order; the output appears atomically when all lines are done.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/text/tokenizer.h"

namespace flywheel::cli {
namespace {

using nlohmann::ordered_json;

struct Line {
  int64_t number = 0;
  std::string text;
};

bool parse_bool(const std::string& flag, const std::string& value) {
  if (value == "true") return true;
  if (value == "false") return false;
  throw UserError("flywheel tokenize: --" + flag + ": expected true or false, got '" + value + "'");
}

// One input line to its output line; UserError "FILE:LINE: ..." for a bad record.
std::string convert(const Tokenizer& tok, const std::string& path, const Line& line, bool decode,
                    bool add_special, bool skip_special) {
  const auto where = path + ":" + std::to_string(line.number);
  ordered_json row = ordered_json::parse(line.text, nullptr, /*allow_exceptions=*/false);
  if (row.is_discarded() || !row.is_object())
    throw UserError(where + ": expected a JSON object on each line");
  if (decode) {
    const auto it = row.find("ids");
    if (it == row.end() || !it->is_array())
      throw UserError(where + ": key 'ids': expected a list of token ids");
    std::vector<int64_t> ids;
    for (const auto& id : *it) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= tok.vocab_size())
        throw UserError(where + ": key 'ids': " + id.dump() + " is not a token id in [0, " +
                        std::to_string(tok.vocab_size()) + ")");
      ids.push_back(id.get<int64_t>());
    }
    row["text"] = tok.decode(ids, !skip_special);
  } else {
    const auto it = row.find("text");
    if (it == row.end() || !it->is_string())
      throw UserError(where + ": key 'text': expected a string");
    const auto& text = it->get_ref<const std::string&>();
    const auto ids = add_special ? tok.encode_with_special_tokens(text) : tok.encode(text);
    ordered_json tokens = ordered_json::array();
    for (const int64_t id : ids)
      tokens.push_back(tok.id_to_piece(id));
    row["ids"] = ids;
    row["tokens"] = std::move(tokens);
  }
  // Pieces of byte-level vocabularies are valid UTF-8; SentencePiece byte pieces are too.
  return row.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

int run_tokenize(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"model", "DIR", "a model or tokenizer directory (tokenizer.json or tokenizer.model)"},
      {"in", "FILE", "JSONL input: {\"text\"} lines (with --decode: {\"ids\"} lines)"},
      {"out", "FILE", "JSONL output: each input line plus \"ids\" and \"tokens\" (or \"text\")"},
      {"add-special-tokens", "true|false",
       "add the tokenizer's special tokens (its post-processor's, or bos) (default true)"},
      {"decode", "", "decode {\"ids\"} lines to \"text\" instead of encoding"},
      {"skip-special-tokens", "", "with --decode: leave special tokens out of the text"},
      {"threads", "N", "encoding threads (default: all cores)"},
  };
  Args args("tokenize", specs, argv);
  if (args.help()) {
    std::fputs(format_help("tokenize", "--model DIR --in FILE.jsonl --out FILE.jsonl",
                           "Encodes {\"text\"} lines to ids and tokens, or decodes {\"ids\"} lines "
                           "with --decode.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const Tokenizer tok = Tokenizer::from_dir(args.require("model"));
  const std::string in_path = args.require("in"), out_path = args.require("out");
  const bool decode = args.flag("decode");
  const bool add_special =
      parse_bool("add-special-tokens", args.get("add-special-tokens").value_or("true"));
  const bool skip_special = args.flag("skip-special-tokens");
  const auto threads = static_cast<size_t>(
      args.get_int("threads", std::max(1u, std::thread::hardware_concurrency()), 1));

  JsonlReader reader(in_path);
  const std::string tmp = out_path + ".tmp";
  std::ofstream out(tmp);
  if (!out) throw UserError("cannot write " + tmp);
  constexpr size_t kBatch = 4096;
  int64_t lines = 0;
  for (bool more = true; more;) {
    std::vector<Line> batch;
    Line line;
    while (batch.size() < kBatch && (more = reader.next_line(&line.text, &line.number)))
      batch.push_back(line);
    std::vector<std::string> converted(batch.size());
    std::vector<std::string> errors(threads);
    std::vector<std::thread> workers;
    const size_t per = (batch.size() + threads - 1) / threads;
    for (size_t w = 0; w < threads && w * per < batch.size(); ++w) {
      workers.emplace_back([&, w] {
        try {
          for (size_t i = w * per; i < std::min(batch.size(), (w + 1) * per); ++i)
            converted[i] = convert(tok, in_path, batch[i], decode, add_special, skip_special);
        } catch (const std::exception& e) {
          errors[w] = e.what();  // reported in file order below, whatever its kind
        }
      });
    }
    for (auto& t : workers)
      t.join();
    // The first bad line in file order is the one reported, whatever the thread count.
    for (const auto& e : errors) {
      if (!e.empty()) {
        out.close();
        std::filesystem::remove(tmp);
        throw UserError(e);
      }
    }
    for (const auto& c : converted)
      out << c << "\n";
    lines += static_cast<int64_t>(batch.size());
  }
  if (!out.flush()) throw UserError("cannot write " + tmp);
  out.close();
  std::filesystem::rename(tmp, out_path);
  std::fprintf(stderr, "tokenize: %lld lines (%s tokenizer) -> %s\n", static_cast<long long>(lines),
               tok.backend(), out_path.c_str());
  return 0;
}

}  // namespace flywheel::cli
