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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

class BareCrScan {
 public:
  // The position of the first byte after a CR that is not LF: in `consumed` (a CR that ended
  // the bytes of the last call counts), or consumed.size() for `next`; npos if there is none.
  // `next`: at the end of a header section, the parser stops before the byte it takes for the
  // section's last LF; that byte (or nothing).
  size_t find(absl::string_view consumed, absl::string_view next = {}) {
    const char* p = consumed.data();
    const size_t n = consumed.size();
    size_t i = 0;
    if (prev_cr_ && n > 0) {
      if (p[0] != '\n') return 0;
      prev_cr_ = false;
      i = 1;
    }
#if defined(__SSE2__)
    // Sixteen bytes at a time, the last block overlapping the one before (a head is mostly
    // neither CR nor LF, and this runs per request): the lanes holding CR whose next byte is
    // not LF. Then the last byte, whose next byte the next call brings.
    if (n - i >= 17) {
      const __m128i cr = _mm_set1_epi8('\r');
      const __m128i lf = _mm_set1_epi8('\n');
      for (;; i += 16) {
        if (i + 17 > n) i = n - 17;
        const __m128i here = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const __m128i after = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
        const int bare = _mm_movemask_epi8(
            _mm_andnot_si128(_mm_cmpeq_epi8(after, lf), _mm_cmpeq_epi8(here, cr)));
        if (bare != 0)
          return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(bare))) + 1;
        if (i + 17 == n) break;
      }
      i = n - 1;
    }
#endif
    for (; i < n; ++i) {
      if (p[i] != '\r') continue;
      if (i + 1 == n) break;
      if (p[i + 1] != '\n') return i + 1;
      ++i;
    }
    if (n > 0) prev_cr_ = p[n - 1] == '\r';  // every CR before it is followed by LF
    if (next.empty()) return absl::string_view::npos;
    const bool bare = prev_cr_ && next[0] != '\n';
    prev_cr_ = false;  // the body follows
    return bare ? n : absl::string_view::npos;
  }

  void reset() { prev_cr_ = false; }

  static constexpr absl::string_view kError = "bare CR (not followed by LF)";

 private:
  bool prev_cr_ = false;  // the last byte scanned was a CR
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_BARE_CR_SCAN_H_
