// scanner.h: the "HTTP" every hand-written peer of tests/load/compare/run.sh speaks (the floor,
// libevent, libuv, Asio), so that they differ only in their event loop and buffering.
//
// It is not a parser: a request is everything up to and including the next "\r\n\r\n" (no
// bodies), and the one header it looks at is "Connection: close" (case-insensitive, at the
// start of a line). Every request gets the same canned 200 "Hello, world!" response; the one
// that asked for close gets it with "Connection: close" and is the last one answered. That is
// the least work any HTTP/1.1 keep-alive server with pipelining can do per request, which is why
// it is the floor ioloop's real parser is measured against.
//
// Plain C that also compiles as C++ (the Asio peer includes it); header-only, static functions.
#ifndef IOLOOP_TESTS_LOAD_COMPARE_SCANNER_H_
#define IOLOOP_TESTS_LOAD_COMPARE_SCANNER_H_

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define HELLO_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
static const char kHello[] = HELLO_HEAD "\r\nHello, world!";
static const char kHelloClose[] = HELLO_HEAD "Connection: close\r\n\r\nHello, world!";
#undef HELLO_HEAD
enum { kHelloLen = sizeof kHello - 1, kHelloCloseLen = sizeof kHelloClose - 1 };

// Whether the request head [p, p + n) holds a "Connection: close" line.
static int scanner_wants_close(const char* p, size_t n) {
  static const char kName[] = "\r\nconnection:";
  const size_t name_len = sizeof kName - 1;
  for (size_t i = 0; i + name_len <= n; ++i) {
    if (p[i] != '\r' || strncasecmp(p + i, kName, name_len) != 0) continue;
    size_t j = i + name_len;
    while (j < n && (p[j] == ' ' || p[j] == '\t')) ++j;
    if (j + 5 <= n && strncasecmp(p + j, "close", 5) == 0) return 1;
  }
  return 0;
}

// Scans data[0, len) for complete requests. Returns how many bytes they take (the caller keeps
// the rest for the next read), sets *count to their number and *close to 1 if the last of them
// asked to close (the scan stops there: nothing after it is answered).
static size_t scanner_scan(const char* data, size_t len, size_t* count, int* close) {
  size_t used = 0;
  *count = 0;
  *close = 0;
  while (used < len) {
    const char* end = (const char*)memmem(data + used, len - used, "\r\n\r\n", 4);
    if (end == NULL) break;
    const size_t head_len = (size_t)(end - (data + used)) + 4;
    ++*count;
    if (scanner_wants_close(data + used, head_len)) {
      *close = 1;
      return used + head_len;
    }
    used += head_len;
  }
  return used;
}

// Writes the answers to `count` requests (the last with close if `close`) into out, which must
// hold count * kHelloCloseLen bytes; returns the bytes written.
static size_t scanner_responses(char* out, size_t count, int close) {
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    if (close && i + 1 == count) {
      memcpy(out + n, kHelloClose, kHelloCloseLen);
      n += kHelloCloseLen;
    } else {
      memcpy(out + n, kHello, kHelloLen);
      n += kHelloLen;
    }
  }
  return n;
}

#endif  // IOLOOP_TESTS_LOAD_COMPARE_SCANNER_H_
