// File: testing/heap.h
// What the heap holds, for tests that bound the memory a connection keeps.
#ifndef IOLOOP_TESTS_TESTING_HEAP_H_
#define IOLOOP_TESTS_TESTING_HEAP_H_

#include <malloc.h>

#include <cstddef>

namespace ioloop::testing {

// Bytes in allocated chunks (glibc's count, malloc's headers and rounding included), those
// glibc maps on their own (from 128 KiB up, at first) too; 0 under a sanitizer's allocator,
// which does not keep it: skip the test then.
inline size_t heap_in_use() {
  const struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}

// glibc's chunk for a request of `n` bytes (x86-64): 8 bytes of header, rounded up to 16,
// at least 32. Lets a test state its bound as "these objects, as malloc stores them".
constexpr size_t malloc_chunk(size_t n) {
  const size_t c = (n + 8 + 15) / 16 * 16;
  return c < 32 ? 32 : c;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_HEAP_H_
