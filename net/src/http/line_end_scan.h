// File: net/src/http/line_end_scan.h
// LineEndScan: line ends in a head or trailer section that libhttp_parser lets through: CRs not
// followed by LF, and (for requests) obsolete line folding.
//
// Debian builds libhttp_parser non-strict. After the CR that ends an empty field value, and
// after the CR of a section's empty last line, it takes any byte for the LF. So
// "Foo:\rXContent-Length: 32" is a Content-Length field to it, and "\r\n\rXGET /" ends the
// header section where another request begins. RFC 9112 §2.2 lets a recipient replace a bare
// CR with SP, and a front end that does sees one field, or a folded line, instead: the two
// frame the stream differently (request smuggling). Both parsers therefore reject every CR in
// these sections that is not followed by LF.
//
// libhttp_parser also joins a line that starts with SP or HTAB to the field before it
// (obs-fold). "Transfer-Encoding:\r\n chunked" is chunked to it, and no body at all to a front
// end that does not fold. RFC 9112 §5.2 lets a server reject a request that folds with a 400,
// so the request parser does (Folds::kReject): an LF followed by SP or HTAB, which is also
// how whitespace before the first field line looks (§2.2: reject or skip that line). A
// response's folds are kept and joined, as a user agent and a proxy may (§5.2).
//
// The parsers call find() after each http_parser_execute() in such a section, with the bytes it
// consumed. An error found there takes precedence over any other from the same call: those
// bytes came first, so the error is the same whatever the split.
//
// Thread: the owning parser's.
#ifndef IOLOOP_NET_SRC_HTTP_LINE_END_SCAN_H_
#define IOLOOP_NET_SRC_HTTP_LINE_END_SCAN_H_

#include <cstddef>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

class LineEndScan {
 public:
  enum class Folds : bool { kAllow, kReject };
  explicit LineEndScan(Folds folds) : reject_folds_(folds == Folds::kReject) {}

  // The position of the first byte after a CR that is not LF, or (kReject) of the SP or HTAB
  // after an LF: in `consumed` (a CR or LF that ended the bytes of the last call counts), or
  // consumed.size() for `next`; npos if there is none. error() then says which.
  // `next`: at the end of a header section, the parser stops before the byte it takes for the
  // section's last LF; that byte (or nothing). What follows a section is not scanned.
  size_t find(absl::string_view consumed, absl::string_view next = {}) {
    const char* p = consumed.data();
    const size_t n = consumed.size();
    size_t i = 0;
    if (n > 0 && prev_ != '\0') {
      if (prev_ == '\r' ? p[0] != '\n' : is_fold_space(p[0])) return found(prev_, 0);
      prev_ = '\0';  // p[0] is checked below, with the byte after it (a CRLF's LF may fold)
    }
#if defined(__SSE2__)
    // Sixteen bytes at a time, the last block overlapping the one before (a head is mostly
    // neither CR nor LF, and this runs per request): the lanes holding CR whose next byte is
    // not LF, or LF whose next byte is SP or HTAB. Then the last byte, whose next byte the next
    // call brings.
    if (n - i >= 17) {
      const __m128i cr = _mm_set1_epi8('\r');
      const __m128i lf = _mm_set1_epi8('\n');
      const __m128i sp = _mm_set1_epi8(' ');
      const __m128i ht = _mm_set1_epi8('\t');
      const __m128i folds = _mm_set1_epi8(reject_folds_ ? -1 : 0);
      for (;; i += 16) {
        if (i + 17 > n) i = n - 17;
        const __m128i here = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const __m128i after = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
        const __m128i bare_cr =
            _mm_andnot_si128(_mm_cmpeq_epi8(after, lf), _mm_cmpeq_epi8(here, cr));
        const __m128i fold =
            _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(here, lf), folds),
                          _mm_or_si128(_mm_cmpeq_epi8(after, sp), _mm_cmpeq_epi8(after, ht)));
        const int bad = _mm_movemask_epi8(_mm_or_si128(bare_cr, fold));
        if (bad != 0) {
          const size_t at = i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(bad)));
          return found(p[at], at + 1);
        }
        if (i + 17 == n) break;
      }
      i = n - 1;
    }
#endif
    for (; i + 1 < n; ++i) {
      if (p[i] == '\r' ? p[i + 1] != '\n' : p[i] == '\n' && is_fold_space(p[i + 1])) {
        return found(p[i], i + 1);
      }
    }
    if (i < n && (p[i] == '\r' || p[i] == '\n')) prev_ = p[i];
    if (next.empty()) return absl::string_view::npos;
    const bool bare = prev_ == '\r' && next[0] != '\n';
    prev_ = '\0';  // the body, or the next message, follows
    return bare ? found('\r', n) : absl::string_view::npos;
  }

  void reset() { prev_ = '\0'; }

  // Why find() found something: one of the two texts below.
  absl::string_view error() const { return error_; }
  static constexpr absl::string_view kBareCr = "bare CR (not followed by LF)";
  static constexpr absl::string_view kFold = "obsolete line folding (obs-fold) in a header section";

 private:
  bool is_fold_space(char c) const { return reject_folds_ && (c == ' ' || c == '\t'); }
  size_t found(char line_end, size_t at) {
    error_ = line_end == '\r' ? kBareCr : kFold;
    return at;
  }

  bool reject_folds_;
  // The last byte scanned, when it is a CR or (kReject) an LF whose next byte is still to come.
  char prev_ = '\0';
  absl::string_view error_;
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_LINE_END_SCAN_H_
