#include "trainer/text/hf_decoder.h"

#include "trainer/core/error.h"

namespace flywheel {
namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t at = 0;
  for (size_t hit; (hit = s.find(from, at)) != std::string::npos; at = hit + from.size())
    out.append(s, at, hit - at).append(to);
  return out.append(s, at, std::string::npos);
}

// "<0xAB>" -> 0xAB, or -1 for any other token.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::vector<std::string> byte_fallback(const std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string bytes;
  size_t run = 0;
  const auto flush = [&] {
    if (run == 0) return;
    if (lossy_utf8(bytes) == bytes) {
      out.push_back(bytes);
    } else {
      for (size_t i = 0; i < run; ++i)
        out.emplace_back("\xEF\xBF\xBD");
    }
    bytes.clear();
    run = 0;
  };
  for (const auto& t : tokens) {
    const int b = byte_token(t);
    if (b < 0) {
      flush();
      out.push_back(t);
      continue;
    }
    bytes += static_cast<char>(b);
    ++run;
  }
  flush();
  return out;
}

std::string strip(const std::string& t, const std::string& c, size_t start, size_t stop) {
  size_t begin = 0, end = t.size();
  for (size_t i = 0; i < start && t.compare(begin, c.size(), c) == 0; ++i)
    begin += c.size();
  for (size_t i = 0;
       i < stop && end >= begin + c.size() && t.compare(end - c.size(), c.size(), c) == 0; ++i)
    end -= c.size();
  return t.substr(begin, end - begin);
}

}  // namespace

// Bytes as UTF-8 with each invalid sequence replaced by U+FFFD (Rust's from_utf8_lossy: one
// replacement per maximal invalid prefix).
std::string lossy_utf8(const std::string& bytes) {
  std::string out;
  size_t i = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  while (i < bytes.size()) {
    const unsigned char c = b[i];
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    size_t j = 1;
    for (; j <= need && i + j < bytes.size(); ++j) {
      const unsigned char d = b[i + j];
      const unsigned char l = j == 1 ? lo : 0x80, h = j == 1 ? hi : 0xBF;
      if (d < l || d > h) break;
    }
    if (j == need + 1) {
      out.append(bytes, i, need + 1);
      i += need + 1;
    } else {
      out += "\xEF\xBF\xBD";
      i += j;
    }
  }
  return out;
}

std::vector<HfDecodeStep> parse_hf_decoder(const nlohmann::json& d, const std::string& where) {
  const std::string type = d.value("type", "?");
  if (type == "Sequence") {
    std::vector<HfDecodeStep> steps;
    for (const auto& sub : d.at("decoders")) {
      const auto more = parse_hf_decoder(sub, where);
      steps.insert(steps.end(), more.begin(), more.end());
    }
    return steps;
  }
  HfDecodeStep s{HfDecodeStep::Kind::kFuse, "", "", 0, 0, false};
  if (type == "Replace") {
    if (!d.at("pattern").contains("String"))
      throw UserError(where + ": Replace decoder: only a String pattern is supported");
    s = {HfDecodeStep::Kind::kReplace,
         d["pattern"]["String"].get<std::string>(),
         d.at("content").get<std::string>(),
         0,
         0,
         false};
  } else if (type == "ByteFallback") {
    s.kind = HfDecodeStep::Kind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = HfDecodeStep::Kind::kFuse;
  } else if (type == "Strip") {
    s = {HfDecodeStep::Kind::kStrip,  d.at("content").get<std::string>(), "",
         d.at("start").get<size_t>(), d.at("stop").get<size_t>(),         false};
  } else if (type == "Metaspace") {
    const std::string scheme = d.contains("prepend_scheme")
                                   ? d["prepend_scheme"].get<std::string>()
                                   : (d.value("add_prefix_space", true) ? "always" : "never");
    s = {HfDecodeStep::Kind::kMetaspace,
         d.value("replacement", "\xE2\x96\x81"),
         " ",
         0,
         0,
         scheme != "never"};
  } else {
    throw UserError(where + ": decoder type '" + type +
                    "' is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                    "Metaspace, Sequence)");
  }
  return {s};
}

std::vector<std::string> apply_hf_decoder(const std::vector<HfDecodeStep>& steps,
                                          std::vector<std::string> tokens) {
  for (const auto& s : steps) {
    switch (s.kind) {
      case HfDecodeStep::Kind::kReplace:
        for (auto& t : tokens)
          t = replace_all(t, s.from, s.to);
        break;
      case HfDecodeStep::Kind::kByteFallback:
        tokens = byte_fallback(tokens);
        break;
      case HfDecodeStep::Kind::kFuse: {
        std::string all;
        for (const auto& t : tokens)
          all += t;
        tokens = {all};
        break;
      }
      case HfDecodeStep::Kind::kStrip:
        for (auto& t : tokens)
          t = strip(t, s.from, s.start, s.stop);
        break;
      case HfDecodeStep::Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = replace_all(tokens[i], s.from, " ");
          if (i == 0 && s.strip_first && !tokens[i].empty() && tokens[i][0] == ' ')
            tokens[i].erase(0, 1);
        }
        break;
    }
  }
  return tokens;
}

}  // namespace flywheel
