// File: net/src/http/bare_cr_scan.h
// BareCrScan: CRs not followed by LF in a head or trailer section, which libhttp_parser lets
// through.
//
// Debian builds libhttp_parser non-strict. After the CR that ends an empty field value, and
// after the CR of a section's empty last line, it takes any byte for the LF. So
// "Foo:\rXContent-Length: 32" is a Content-Length field to it, and "\r\n\rXGET /" ends the
// header section where another request begins. RFC 9112 §2.2 lets a recipient replace a bare
// CR with SP, and a front end that does sees one field, or a folded line, instead: the two
// frame the stream differently (request smuggling). Both parsers therefore reject every CR in
// these sections that is not followed by LF.
//
// The parsers call find() after each http_parser_execute() in such a section, with the bytes it
// consumed. An error found there takes precedence over any other from the same call: those
// bytes came first, so the error is the same whatever the split.
//
// Thread: the owning parser's.
#ifndef IOLOOP_NET_SRC_HTTP_BARE_CR_SCAN_H_
#define IOLOOP_NET_SRC_HTTP_BARE_CR_SCAN_H_

#include <cstddef>
#include <cstring>

#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

class BareCrScan {
 public:
  // The position of the first byte after a CR that is not LF: in `consumed` (a CR that ended
  // the bytes of the last call counts), or consumed.size() for `next`; npos if there is none.
  // `next`: at the end of a header section, the parser stops before the byte it takes for the
  // section's last LF; that byte (or nothing).
  size_t find(absl::string_view consumed, absl::string_view next = {}) {
    size_t i = 0;
    while (i < consumed.size()) {
      if (prev_cr_) {
        if (consumed[i] != '\n') return i;
        prev_cr_ = false;
        ++i;
        continue;
      }
      // memchr jumps from one CR to the next: a head is mostly neither.
      const void* cr = std::memchr(consumed.data() + i, '\r', consumed.size() - i);
      if (cr == nullptr) break;
      i = static_cast<size_t>(static_cast<const char*>(cr) - consumed.data()) + 1;
      prev_cr_ = true;
    }
    if (next.empty()) return absl::string_view::npos;
    const bool bare = prev_cr_ && next[0] != '\n';
    prev_cr_ = false;  // the body follows
    return bare ? consumed.size() : absl::string_view::npos;
  }

  void reset() { prev_cr_ = false; }

  static constexpr absl::string_view kError = "bare CR (not followed by LF)";

 private:
  bool prev_cr_ = false;  // the last byte scanned was a CR
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_BARE_CR_SCAN_H_
