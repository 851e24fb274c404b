// File: net/src/http/chunk_line_guard.h
// ChunkLineGuard: the bytes of a chunk-size line that libhttp_parser does not check, checked
// before it sees them.
//
// Debian builds libhttp_parser non-strict. In a chunk extension it skips every byte but CR, and
// it takes any byte after a chunk-size line's CR for the LF. So "3;x\nabc\r\nXYZ" is a 3-byte
// chunk "XYZ" to it, where a front end that ends lines at a bare LF reads the chunk "abc"
// (chunk-extension smuggling). It also takes a space after the size for the start of an
// extension, so "3 5" is a chunk of 3, and a pipelined "BAD /x HTTP/1.1" reads as a chunk-size
// line. RFC 9112 §7.1.1: chunk-size [ chunk-ext ] CRLF, chunk-ext = *( BWS ";" ... ), with
// tokens, quoted strings (obs-text included) and whitespace. So from the first byte of a
// chunk-size line to its CR, any control byte but HTAB (and DEL) is malformed, whitespace
// after the size may be followed only by ';' or (leniently) the CR, and the byte after the CR
// must be LF.
//
// Both parsers call limit() with the bytes they are about to hand to http_parser_execute(),
// and hand only that many. The cut is at the line's first bad byte, whatever the split, so the
// error comes at one stream position: the parser's own errors on the bytes before it (an
// invalid or overflowing size) come first, and checks at the line's end (413 for a chunk over
// max_body_size) never run. limit() advances the guard over the bytes it allows. That is exact
// because the parser takes every byte it is given inside a chunk-size line: nothing pauses it
// before the line's LF (on_chunk_header), and an error ends the parse.
//
// Thread: the owning parser's. Not copied into any API: an implementation detail.
#ifndef IOLOOP_NET_SRC_HTTP_CHUNK_LINE_GUARD_H_
#define IOLOOP_NET_SRC_HTTP_CHUNK_LINE_GUARD_H_

#include <http_parser.h>

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "http/http_ascii.h"

namespace ioloop::net::internal {

class ChunkLineGuard {
 public:
  // A chunk-size line starts with the next byte handed to the parser, or the one after it when
  // `after_head`: at the end of a chunked header section the parser pauses before the head's
  // last LF, which it takes at the next call. Called where the parser pauses (the end of a
  // chunked head, the CRLF after a chunk's data).
  void begin(bool after_head) { state_ = after_head ? State::kHeadLf : State::kSize; }

  // Forgets any line (a new message).
  void reset() { state_ = State::kOff; }

  // How many bytes of `data` the parser may take: all of them, or those before the current
  // chunk-size line's first bad byte; then failed() is true. 0 only when data[0] is that byte:
  // the caller fails then instead of calling http_parser_execute() with no bytes (EOF to it).
  size_t limit(absl::string_view data) {
    for (size_t i = 0; i < data.size() && state_ != State::kOff; ++i) {
      const auto u = static_cast<uint8_t>(data[i]);
      if (state_ == State::kHeadLf) {
        state_ = State::kSize;
      } else if (state_ == State::kSize || state_ == State::kExtension) {
        if (u == '\r') {
          state_ = State::kCr;
        } else if (is_control_but_htab(data[i])) {
          state_ = State::kBadByte;
          return i;
        } else if (state_ == State::kSize && (u == ' ' || u == '\t' || u == ';')) {
          state_ = u == ';' ? State::kExtension : State::kSizeSpace;
        }  // else a hex digit, or a byte libhttp_parser rejects itself
      } else if (state_ == State::kSizeSpace) {
        if (u == ';' || u == '\r') {
          state_ = u == ';' ? State::kExtension : State::kCr;
        } else if (u != ' ' && u != '\t') {
          state_ = State::kBadByte;  // "3 5", "BAD /x HTTP/1.1": libhttp_parser ignores it
          return i;
        }
      } else if (state_ == State::kCr) {
        if (u != '\n') {
          state_ = State::kBareCr;
          return i;
        }
        state_ = State::kOff;
      } else {
        return 0;  // failed already: nothing more
      }
    }
    return data.size();
  }

  // What to call an error libhttp_parser reports inside a chunk-size line, where its own text
  // misleads: a size of 2^64 or more is "invalid character in content-length header", a line
  // longer than its limit (a long extension) a header overflow. Empty for any other error.
  static absl::string_view parser_error(http_errno err) {
    static_assert(HTTP_MAX_HEADER_SIZE == 81920, "the text below names the limit");
    switch (err) {
      case HPE_INVALID_CONTENT_LENGTH:
        return "chunk size too large";
      case HPE_HEADER_OVERFLOW:
        return "chunk-size line exceeds 81920 bytes";
      default:
        return {};
    }
  }

  // Whether limit() stopped at a bad byte, and why (for the parser's error).
  bool failed() const { return state_ == State::kBadByte || state_ == State::kBareCr; }
  absl::string_view reason() const {
    return state_ == State::kBareCr ? "bare CR (not followed by LF)"
                                    : "invalid character in chunk-size line";
  }

 private:
  enum class State : uint8_t {
    kOff,
    kHeadLf,     // the head's last LF comes first
    kSize,       // the chunk size (libhttp_parser checks its digits)
    kSizeSpace,  // whitespace after the size: only more of it, ';' or CR may follow
    kExtension,  // after ';'
    kCr,         // the line's CR: its LF is next
    kBadByte,    // failed
    kBareCr,     // failed
  };
  State state_ = State::kOff;
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_CHUNK_LINE_GUARD_H_
