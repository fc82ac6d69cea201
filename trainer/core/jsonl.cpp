#include "trainer/core/jsonl.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace flywheel {
namespace {

constexpr unsigned kChunkBytes = 1 << 16;

// nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1, column 7:
// syntax error ..."; every parse sees a single line, so only the column is worth keeping.
std::string describe_parse_error(const nlohmann::json::parse_error& e) {
  const std::string what = e.what();
  const size_t column = what.find("column ");
  return column == std::string::npos ? what : what.substr(column);
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

}  // namespace

JsonlReader::JsonlReader(const std::string& path) : path_(path) {
  errno = 0;
  file_ = gzopen(path.c_str(), "rb");
  if (file_ == nullptr) {
    throw UserError("cannot open " + path + ": " +
                    (errno != 0 ? std::strerror(errno) : "out of memory"));
  }
  gzbuffer(file_, kChunkBytes);
}

JsonlReader::~JsonlReader() {
  gzclose(file_);
}

void JsonlReader::fill_buffer() {
  char chunk[kChunkBytes];
  const int n = gzread(file_, chunk, kChunkBytes);
  int status = Z_OK;
  const char* message = gzerror(file_, &status);
  // Z_BUF_ERROR: the file ended in the middle of a gzip stream (a truncated download).
  if (n < 0 || (status != Z_OK && status != Z_BUF_ERROR)) {
    throw UserError("cannot read " + path_ + ": " + message);
  }
  if (n == 0) {
    if (status == Z_BUF_ERROR) {
      throw UserError("cannot read " + path_ + ": unexpected end of file (truncated gzip stream)");
    }
    eof_ = true;
  }
  buffer_.append(chunk, static_cast<size_t>(n));
}

bool JsonlReader::read_line(std::string* line) {
  size_t search_from = pos_;
  while (true) {
    const size_t newline = buffer_.find('\n', search_from);
    if (newline != std::string::npos) {
      line->assign(buffer_, pos_, newline - pos_);
      pos_ = newline + 1;
      return true;
    }
    if (eof_) {
      if (pos_ == buffer_.size()) return false;
      line->assign(buffer_, pos_, std::string::npos);
      pos_ = buffer_.size();
      return true;
    }
    // Keep only the unfinished line, and search only the bytes still to be appended.
    buffer_.erase(0, pos_);
    pos_ = 0;
    search_from = buffer_.size();
    fill_buffer();
  }
}

bool JsonlReader::next_line(std::string* text, int64_t* line) {
  while (read_line(text)) {
    ++line_;
    if (is_blank(*text)) continue;
    if (text->back() == '\r') text->pop_back();
    *line = line_;
    return true;
  }
  return false;
}

bool JsonlReader::next(JsonlRecord* out) {
  std::string text;
  if (!next_line(&text, &out->line)) return false;
  out->value = parse_jsonl_line(path_, out->line, text);
  return true;
}

nlohmann::json parse_jsonl_line(const std::string& path, int64_t line, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw JsonlSyntaxError(path + ":" + std::to_string(line) +
                           ": invalid JSON: " + describe_parse_error(e));
  }
}

}  // namespace flywheel
