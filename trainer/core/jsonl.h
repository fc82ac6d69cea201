// Streaming reader for JSON Lines files (one JSON value per line), plain or gzip-compressed.
//
// Files are opened with zlib's gzopen, which reads gzip streams and passes any other file
// through unchanged, so `data.jsonl` and `data.jsonl.gz` share one code path. Lines may be of
// any length; blank (whitespace-only) lines are skipped; a trailing "\r" (CRLF files) is ignored.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "trainer/core/error.h"

struct gzFile_s;  // zlib's file handle, kept out of this header

namespace flywheel {

struct JsonlRecord {
  int64_t line = 0;  // 1-based line number in the (decompressed) file
  nlohmann::json value;
};

// A line that is not valid JSON: "FILE:LINE: invalid JSON: ...". The reader has already moved
// past the line, so a caller that skips invalid records may call next() again. Any other
// UserError from the reader (missing file, corrupt or truncated gzip) is not recoverable.
class JsonlSyntaxError : public UserError {
 public:
  using UserError::UserError;
};

// One line's JSON; JsonlSyntaxError "PATH:LINE: invalid JSON: ..." when it is not.
nlohmann::json parse_jsonl_line(const std::string& path, int64_t line, const std::string& text);

class JsonlReader {
 public:
  // UserError naming the file if it cannot be opened.
  explicit JsonlReader(const std::string& path);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // Reads the next non-blank line into *out; false at the end of the file.
  bool next(JsonlRecord* out);
  // The next non-blank line unparsed (a trailing "\r" dropped) and its number, for callers
  // that parse lines in parallel with parse_jsonl_line; false at the end of the file.
  bool next_line(std::string* text, int64_t* line);

  const std::string& path() const { return path_; }

 private:
  bool read_line(std::string* line);
  void fill_buffer();

  std::string path_;
  gzFile_s* file_ = nullptr;
  std::string buffer_;  // decompressed bytes not yet returned start at pos_
  size_t pos_ = 0;
  bool eof_ = false;
  int64_t line_ = 0;  // number of the last line read
};

}  // namespace flywheel
