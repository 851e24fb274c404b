/// @file ioloop/net/buffer.h
/// Buffer: a growable byte buffer for stream I/O, in the style of muduo's Buffer.
///
/// ```
///   +---------------------+--------------------+-------------------+
///   |   consumed (free)   |  readable bytes    |  writable bytes   |
///   +---------------------+--------------------+-------------------+
///   0           <=     read_index   <=   write_index   <=   capacity
/// ```
///
/// Bytes are appended at write_index and consumed (retrieve) at read_index. When the
/// buffer runs out of writable space it first slides the readable bytes to the front, and
/// only grows (at least doubling) if that is not enough. There is no reserved prepend area.
///
/// Memory: a default-constructed Buffer owns no heap block (24 bytes inline). read_fd()
/// reads into the writable space plus a 64 KiB spill area on the caller's stack, so one
/// readv() can take up to 64 KiB without the buffer keeping 64 KiB allocated; the buffer
/// grows only by what was actually read. release_if_empty() frees the block, so an idle
/// connection holds no buffer at all.
///
/// Lending (IOStream's read buffer): with set_lending(true), a read_fd() into an empty buffer
/// without a block reads into a per-thread spill area and leaves the bytes there, the buffer
/// viewing them, instead of allocating a block and copying them in. A message consumed whole
/// before the next read then costs no allocation and no copy. The loan ends (any unconsumed
/// rest copied into a block of its own) at end_lending(), at the next change that writes into
/// the buffer, at release_if_empty(), or when any Buffer on the thread next reads into the
/// area. The owner must end the loan before the buffer leaves the thread (IOStream ends it
/// after each dispatch).
///
/// Threading: thread-compatible (use from one thread at a time).
/// Limits: a Buffer holds at most kMaxSize = 4 GiB - 1 bytes (indices are 32-bit to keep it
/// small). append() and ensure_writable() refuse to go past it with ResourceExhausted and
/// change nothing; read_fd() never reads more than fits. IOStream's max_buffer_size keeps a
/// stream's buffer below it.
#ifndef IOLOOP_NET_BUFFER_H_
#define IOLOOP_NET_BUFFER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ioloop::net {

/// A growable byte buffer for stream I/O. Thread-compatible; the layout, memory and size rules
/// are in the file comment of ioloop/net/buffer.h.
class Buffer {
 public:
  /// Size of the spill area used by read_fd() (on the stack; per thread when lending): the
  /// most one call reads beyond the buffer's current writable space.
  static constexpr size_t kSpillSize = 64 * 1024;
  /// "Not found", as returned by find(); as read_fd()'s `max_bytes`: no limit but kMaxSize.
  static constexpr size_t npos = static_cast<size_t>(-1);
  /// Most readable bytes a Buffer can hold.
  static constexpr size_t kMaxSize = UINT32_MAX;

  Buffer() = default;
  ~Buffer();
  /// @{
  /// Takes `other`'s block and bytes (and its loan); `other` is left empty, owning no block.
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  /// @}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// @{
  /// The number of readable bytes (size() is the same).
  size_t readable_bytes() const { return write_ - read_; }
  size_t size() const { return readable_bytes(); }
  /// @}
  /// True if no bytes are readable.
  bool empty() const { return write_ == read_; }
  /// Free space after the readable bytes, usable without growing (none while lending).
  size_t writable_bytes() const { return lending_ ? 0 : capacity_ - write_; }
  /// The heap block's size (0: no block, or lending).
  size_t capacity() const { return lending_ ? 0 : capacity_; }

  /// The readable bytes. Invalidated by any non-const call.
  const char* peek() const { return data_ + read_; }
  /// The readable bytes as a view; invalidated like peek().
  absl::string_view view() const { return absl::string_view(peek(), readable_bytes()); }

  /// Appends `n` bytes, or fails with ResourceExhausted (appending nothing, reading nothing
  /// from `data`) if the buffer would then hold more than kMaxSize bytes. `data` may point into
  /// this buffer's own readable bytes (append(view()) repeats them), though the append may move
  /// them.
  absl::Status append(const char* data, size_t n);
  /// As append(data.data(), data.size()).
  absl::Status append(absl::string_view data) { return append(data.data(), data.size()); }

  /// Consumes `n` readable bytes (n <= readable_bytes()). Consuming everything resets the
  /// indices to 0 but keeps the block; see release_if_empty().
  void retrieve(size_t n);
  /// Consumes every readable byte, keeping the block (see release_if_empty()).
  void retrieve_all() { read_ = write_ = 0; }
  /// Consumes `n` bytes and returns them.
  std::string retrieve_as_string(size_t n);
  /// Consumes every readable byte and returns them.
  std::string retrieve_all_as_string() { return retrieve_as_string(readable_bytes()); }

  /// Offset (from peek()) of the first occurrence of `delimiter` that starts at or after
  /// offset `from`, or npos. An empty delimiter is never found.
  size_t find(absl::string_view delimiter, size_t from = 0) const;

  /// Makes room for at least `n` more bytes; see the class comment for the growth rule. Fails
  /// with ResourceExhausted (changing nothing) if that would exceed kMaxSize.
  absl::Status ensure_writable(size_t n);
  /// Where the writable space begins: write at most writable_bytes() there, then has_written().
  char* begin_write() { return data_ + write_; }
  /// Marks `n` bytes written at begin_write() as readable (n <= writable_bytes()).
  void has_written(size_t n) { write_ += static_cast<uint32_t>(n); }

  /// Frees the heap block (or ends the loan) if no bytes are readable. Returns true if the
  /// buffer now holds no block.
  bool release_if_empty();
  /// Reallocates to exactly the readable bytes (frees the block if empty).
  void shrink();

  /// One readv() of at most `max_bytes` from `fd` into the writable space plus a stack
  /// spill area of kSpillSize; what lands in the spill area is appended. Returns what
  /// readv() returned: the byte count, 0 on EOF, or -1 with the errno in *saved_errno
  /// (EINTR is retried). max_bytes is lowered to what still fits under kMaxSize; if that is
  /// 0, it reads nothing and fails with ENOBUFS.
  ssize_t read_fd(int fd, int* saved_errno, size_t max_bytes = npos);
  /// read_fd() for a socket: the same bytes, results and errors, read with recv() (recvmsg()
  /// when the spill area is a second iovec), which the kernel serves without readv()'s file
  /// layer (docs/benchmarks.md §5: BM_SocketRead; IOStream reads this way). On a fd that is
  /// not a socket it fails with ENOTSOCK.
  ssize_t read_socket(int fd, int* saved_errno, size_t max_bytes = npos);
  /// How many bytes read_fd(fd, _, max_bytes) would ask for: a return value below this
  /// means the fd had no more data at that moment.
  size_t read_fd_request(size_t max_bytes = npos) const;

  /// Allows read_fd() to lend (see the file comment). Off by default. Turning it off ends a loan.
  void set_lending(bool on);
  /// True while the readable bytes are in the thread's spill area.
  bool lending() const { return lending_; }
  /// Ends a loan: the readable bytes, if any, are copied into a block of their own.
  void end_lending() {
    if (lending_) own_lent_bytes();
  }

 private:
  void own_lent_bytes();
  ssize_t read_impl(int fd, int* saved_errno, size_t max_bytes, bool socket);

  char* data_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t read_ = 0;
  uint32_t write_ = 0;
  bool may_lend_ = false;
  bool lending_ = false;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_BUFFER_H_
