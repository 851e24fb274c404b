/// @file ioloop/net/io_stream.h
/// IOStream: a buffered, non-blocking byte stream over a connected socket, in the style of
/// Tornado's IOStream (4.5) and muduo's TcpConnection. One outstanding read at a time
/// (read_until, read_bytes, read_until_close, read_streaming); writes are queued in order.
///
/// Threading: an IOStream belongs to one IOLoop. Every method must be called on that
/// loop's thread, and the last reference dropped there (the destructor unregisters from the
/// loop). Another thread keeps a weak_ptr and posts through the loop's handle (LoopHandle),
/// locking the weak_ptr in the posted callable (docs/guide.md §3).
///
/// Lifetime: create() returns a shared_ptr. The stream registers its fd with the loop
/// lazily, the first time a read or a queued write needs it, and stays registered until it
/// closes. While registered the loop holds a strong reference, so you may drop your pointer
/// and the stream lives until it closes (make sure something will close it: a pending read
/// or a close callback notices the peer going away). A stream is never destroyed inside its
/// own dispatch: after close() the loop's reference is released after the current batch,
/// and the completion callbacks hold their own reference while they run. Destroying the
/// IOLoop destroys registered streams without running their pending callbacks; those
/// callbacks are destroyed first, so a callback that owns its stream does not leak it.
/// The fd is closed by close() (or the destructor); socket() gives access for options.
///
/// Completion rule (libuv's): every read and write callback runs exactly once, with the
/// data (or OK) or with an error status; callbacks never run inside the call that passed
/// them. Order of callbacks at close: a pending wait_for_handshake callback, the pending read's
/// callback, then pending write callbacks in write order, then the close callback, all on a
/// later loop iteration. A read started after the close completes the same way.
///
/// Status codes a callback can see:
///   - error(): the status that closed the stream. OK for a clean EOF from the peer or for
///     close() with no reason; the errno text otherwise, Unavailable when the peer is gone
///     ("Connection reset by peer", "Broken pipe"); ResourceExhausted when max_buffer_size or a
///     read_until max_bytes is exceeded; whatever was passed to close(reason).
///   - A read that data already buffered can satisfy completes with that data, even after
///     the stream closed (so nothing received is lost to a race with close()).
///   - A read that cannot be completed because the stream closed gets error() if that is
///     not OK, else Unavailable "...closed by peer (EOF)" or Cancelled "...closed" (local
///     close()). Exceptions: read_until_close and read_streaming without a byte count
///     complete successfully (with the data / an empty string) when error() is OK.
///   - Starting a second read while one is outstanding: the NEW callback gets
///     FailedPrecondition; the outstanding read is unaffected.
///   - A write after close: its callback gets the close status (as above); a write after
///     shutdown_write(): FailedPrecondition.
///
/// Exceptions: the library throws nothing, and callbacks should not either. If one does (a
/// read completion of any mode, a streaming chunk, a write/flush completion, a watermark or
/// the close callback), the exception is logged through the loop's rate-limited path and
/// counted in loop().stats().exceptions, and the stream closes with Internal "exception in
/// IOStream <read|streaming|write|high watermark|low watermark|close> callback: <what()>"
/// (as Tornado closes a stream whose callback raised). Its unread data is dropped, and every
/// other pending completion still runs exactly once, with that status (a write whose bytes
/// were already in the kernel: OK); a streaming callback that threw is not called again: its
/// read fails. Other streams are unaffected. An exception after the stream closed (from the
/// close callback, or a completion run by the close) is logged and counted; the first close
/// status stands.
///
/// Delivery: data that arrives from the socket completes the pending read synchronously
/// in the loop's handler; a read started while enough data is already buffered (or after
/// EOF) completes on the next loop iteration (add_callback), never inside read_*() itself.
/// A read started from inside one of this stream's callbacks is served by the same
/// dispatch without recursion (at most 64 completions per dispatch, then the next
/// iteration), so pipelined requests cost no extra loop hop and cannot recurse unboundedly.
///
/// Half-close: on EOF from the peer, data already buffered is still delivered, the pending
/// read fails (see above), queued writes still flush, and only then does the stream close
/// (OK) and run the close callback. With IOStreamOptions::allow_half_open the stream
/// instead stays open for writing after EOF until you close() it or call shutdown_write()
/// (then it closes once the queue flushed). shutdown_write() sends FIN once queued data has
/// flushed; reading goes on (unless a message is in progress on a plain TCP stream: see
/// set_message_complete()). Over TLS the peer's EOF is its close_notify and our end is
/// ours; a peer that sends FIN without close_notify still ends the stream, but the close
/// status is DataLoss (truncation), so read_until_close and a streaming read to EOF fail
/// rather than pass a cut stream off as complete.
///
/// Fairness: each readiness event reads or writes at most 256 KiB, so one stream's huge
/// write or fast sender cannot starve timers or other streams.
///
/// Transport: every byte goes through the Transport given to create() (transport.h): the
/// plain socket by default, TLS (ioloop/net/tls/) when asked. Everything in this comment
/// holds for both. A transport with a handshake runs it first: reads wait and writes queue
/// until it finished; wait_for_handshake() tells when (a failed handshake closes the stream
/// with its reason).
///
/// Memory: an idle open stream costs two allocations: sizeof(IOStream) (272 bytes on x86-64)
/// with its shared_ptr control block (one allocation, 304 bytes with malloc's header), and the
/// loop's handler entry (48; the stream's handler callback is stored inline in it). The close,
/// read, streaming and watermark callbacks and the watermarks live in the object; the read
/// buffer is freed whenever it is empty, the write queue exists only while bytes are queued, a
/// non-OK close status, a handshake callback and a non-plain transport live in a side
/// allocation made on first use, and the plain transport is shared. Callbacks whose captures
/// exceed 16 bytes are heap-allocated by absl::AnyInvocable (one more allocation each);
/// capture one or two pointers (or one shared_ptr) to stay inline.
/// (tests/net/io_stream_memory_test.cc counts it; tests/bench/io_stream_benchmark.cc,
/// BM_IdleConnectionMemory, measures the RSS.)
///
/// Example (echo):
/// ```
///   auto stream = ioloop::net::IOStream::create(loop, std::move(socket));
///   stream->read_streaming(
///       [s = stream.get()](absl::string_view chunk) { s->write_copy(chunk); },
///       [](absl::StatusOr<std::string>) {});
/// ```
#ifndef IOLOOP_NET_IO_STREAM_H_
#define IOLOOP_NET_IO_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/buffer.h"
#include "ioloop/net/internal/read_request.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"
#include "ioloop/net/transport.h"

namespace ioloop::net {

class WriteQueue;

/// The options of IOStream::create(); the defaults suit most servers.
struct IOStreamOptions {
  /// Most bytes the read buffer may hold. A read that needs more (a read_until with no
  /// delimiter in sight, read_until_close of a bigger stream, read_bytes(n) with a larger
  /// n, which fails at once) closes the stream with ResourceExhausted. Between reads the
  /// stream reads ahead at most this much, so bytes no read asked for never close it.
  /// Capped at 4 GiB - 1; 0 is taken as 1.
  size_t max_buffer_size = 100 * 1024 * 1024;
  /// Keep the stream open for writing after the peer's EOF (see "Half-close" above).
  bool allow_half_open = false;
  /// The caller vouches that the socket is already O_NONBLOCK (accept4/socket with
  /// SOCK_NONBLOCK, Socket::create, Socket::pair): create() then skips its fcntl(F_GETFL)
  /// check, one syscall per connection. TCPServer and TCPClient set it for the sockets they
  /// make. Wrong on a blocking socket, the loop would block in read/send: leave it false for
  /// a socket of unknown origin.
  bool socket_nonblocking = false;
};

/// A buffered, non-blocking stream over a connected socket (Tornado's IOStream): reads that
/// complete with data, queued writes with backpressure, half-close. Loop thread only; the
/// lifetime, completion and error rules are in the file comment of ioloop/net/io_stream.h.
class IOStream : public std::enable_shared_from_this<IOStream> {
 public:
  /// One-shot completion of a read: the bytes, or why they cannot come.
  using ReadCallback = internal::ReadRequest::ReadCallback;
  /// Repeating: one chunk of a read_streaming(), as it arrives (never empty), as a view of the
  /// stream's read buffer that is valid until the callback returns: copy what must outlive it.
  using StreamingCallback = internal::ReadRequest::StreamingCallback;
  /// One-shot: OK once the data of that write() has been handed to the kernel.
  using WriteCallback = absl::AnyInvocable<void(absl::Status) &&>;
  /// Runs once, with error(), after every pending read/write callback has run.
  using CloseCallback = absl::AnyInvocable<void(absl::Status)>;
  /// Watermark crossings (see set_write_watermarks).
  using WatermarkCallback = absl::AnyInvocable<void()>;
  /// One-shot: the transport's handshake finished (OK) or failed (the close status).
  using HandshakeCallback = absl::AnyInvocable<void(absl::Status) &&>;

  /// Adopts a connected socket (made non-blocking if it is not, unless
  /// options.socket_nonblocking says it is). The stream must be used
  /// on `loop`'s thread only. `transport` does the I/O (null: the plain socket; TLS:
  /// ioloop/net/tls/tls_context.h); a transport with a handshake starts it when the stream
  /// first registers with the loop (a read, a write, a close callback or wait_for_handshake).
  static std::shared_ptr<IOStream> create(IOLoop& loop, Socket socket, IOStreamOptions options = {},
                                          std::unique_ptr<Transport> transport = nullptr);
  /// Closes the fd if still open. Runs no callbacks.
  ~IOStream();
  IOStream(const IOStream&) = delete;
  IOStream& operator=(const IOStream&) = delete;

  // --- Reads (one outstanding at a time) ------------------------------------------------
  /// Completes with everything up to and including the first `delimiter`. With max_bytes
  /// > 0, if the delimiter does not end within the first max_bytes bytes, the read fails
  /// and the stream closes with ResourceExhausted (after a close, when buffered data is read,
  /// the read alone fails with it). The delimiter must be 1..65535 bytes
  /// (and no longer than max_buffer_size), else this read fails with InvalidArgument.
  void read_until(std::string delimiter, ReadCallback cb, size_t max_bytes = 0);
  /// Completes with exactly `n` bytes; with `partial`, with 1..n bytes as soon as any are
  /// available. n == 0 completes with "". Without `partial`, an n over max_buffer_size
  /// closes the stream with ResourceExhausted at once (this read fails with it).
  void read_bytes(size_t n, ReadCallback cb, bool partial = false);
  /// Completes with everything until the peer's EOF (subject to max_buffer_size).
  void read_until_close(ReadCallback cb);
  /// Hands each chunk to `on_chunk` as it arrives (whatever is buffered, at most 256 KiB
  /// per call). With total_bytes > 0, stops after exactly total_bytes (the rest stays
  /// buffered) and completes `on_done` with ""; with total_bytes == 0 reads to EOF, then
  /// completes `on_done` with "". `on_chunk` may call pause_reading(), write() or close().
  void read_streaming(StreamingCallback on_chunk, ReadCallback on_done, size_t total_bytes = 0);
  /// True while a read is outstanding.
  bool reading() const { return read_.active(); }

  /// Stops reading from the socket and delivering buffered data until resume_reading().
  /// A read may be outstanding meanwhile. Idempotent. The peer's FIN waits too: the
  /// outstanding read gets what came before it after resume_reading(), then the stream closes
  /// (the peer may still read what we write meanwhile). A connection that is gone both ways
  /// ends the stream at once, paused or not, so that its owner hears of it now: a reset, a
  /// failed write, or a hang-up (epoll and poll report one when a socketpair peer closes, or
  /// a TCP peer's FIN follows shutdown_write()). select reports neither a reset nor a hang-up
  /// to a paused stream, so there they wait for resume_reading() (or a write) like a FIN. The
  /// outstanding read then completes with what was buffered.
  void pause_reading();
  /// Undoes pause_reading(): buffered data is delivered and the socket read again. Idempotent.
  void resume_reading();
  /// True between pause_reading() and resume_reading().
  bool reading_paused() const { return paused_; }

  // --- Writes ------------------------------------------------------------------------------
  /// Queues `data` after earlier writes. When nothing is queued it is sent at once with
  /// send(MSG_NOSIGNAL) and only the unsent rest is queued (then WRITE interest is
  /// registered until the queue drains). `on_flushed` runs once with OK when all of `data`
  /// is in the kernel, or with the error if the stream closes first; always from a later loop
  /// iteration (a posted callback), and in write order with the callbacks of the other writes
  /// the stream took (a write refused at once, after shutdown_write() or close, gets its error
  /// posted at the call).
  void write(std::string data, WriteCallback on_flushed = nullptr);
  /// As write(), but the caller keeps `data`'s storage: only what the kernel does not take at
  /// once is copied (and queued). For a buffer reused across writes, e.g. a response head,
  /// where write(std::string) would give its capacity away and the next one allocate anew.
  void write_copy(absl::string_view data, WriteCallback on_flushed = nullptr);
  /// Several buffers, flushed together with one sendmsg() (e.g. pipelined responses).
  /// `on_flushed` runs once, when the last of them is flushed.
  void writev(std::vector<std::string> chunks, WriteCallback on_flushed = nullptr);
  /// Bytes queued and not yet accepted by the kernel (or the transport).
  size_t write_buffer_size() const;
  /// True while bytes are queued (write_buffer_size() > 0).
  bool writing() const { return write_buffer_size() > 0; }

  /// Backpressure. When write_buffer_size() rises to >= `high` the high callback runs once
  /// (synchronously, at the end of the write() that crossed it); when it then drains to
  /// <= `low` the low callback runs once (from the loop's handler); and so on for each
  /// crossing. high == 0 disables both. InvalidArgument, and the watermarks set before stay,
  /// if low >= high (with high > 0). Both are capped at 4 GiB - 1 (as max_buffer_size is),
  /// which keeps them in the stream object itself.
  absl::Status set_write_watermarks(size_t high, size_t low);
  /// @{
  /// The callbacks of set_write_watermarks(): run on each crossing of `high` (rising) and
  /// `low` (draining). Replace the previous ones.
  void set_high_watermark_callback(WatermarkCallback cb);
  void set_low_watermark_callback(WatermarkCallback cb);
  /// @}

  /// Once queued data has flushed, shutdown(SHUT_WR): the peer sees EOF. Reading goes on
  /// (a plain TCP stream with a message in progress closes with a reset instead: see
  /// set_message_complete()). Later writes fail with FailedPrecondition.
  void shutdown_write();
  /// shutdown_write() for data that was cut short: a TLS stream sends the FIN without
  /// close_notify (and close() sends none after it), so that the peer reads a truncation, not
  /// a clean end. For a message whose end only the connection's end marks (a close-delimited
  /// HTTP body) that failed midway. A plain stream: shutdown_write() (a TCP one with a message
  /// in progress, below, ends with a reset instead).
  void shutdown_write_truncated();
  /// Says whether the data written so far is a whole message (false: one in progress, such as
  /// a close-delimited HTTP body). While it is not, whatever ends the stream (close() or
  /// shutdown_write(), a server stopping included) ends it as cut short, so that the peer
  /// cannot take the message for a whole one: a TLS stream as after shutdown_write_truncated(),
  /// a plain TCP one with a reset (SO_LINGER 0) once the queued data is in the kernel, so the
  /// stream closes then. The peer reads what it received, then ECONNRESET; bytes the kernel
  /// had not sent yet are lost with the reset. (A plain Unix-domain stream has no such end:
  /// its peer reads EOF either way, and it ends as usual.) Set it back once the message is
  /// complete, before the stream's clean end. Initially true.
  void set_message_complete(bool complete);

  // --- Handshake ---------------------------------------------------------------------------
  /// `cb` runs once: with OK when the transport's handshake has finished (a plain stream: on
  /// the next iteration), else with the status that closed the stream (a failed handshake:
  /// its reason). Until then reads wait and writes queue. One callback at a time: a second
  /// call replaces a callback that has not run (it gets FailedPrecondition).
  void wait_for_handshake(HandshakeCallback cb);
  /// The transport (for TLS details: ioloop/net/tls/tls_transport.h).
  Transport& transport() const {
    return side_ && side_->transport ? *side_->transport : Transport::plain();
  }

  // --- Closing -----------------------------------------------------------------------------
  /// Runs once after the stream closed, with error(). If the stream is already closed and
  /// its close callback has run, `cb` is scheduled to run on the next iteration.
  void set_close_callback(CloseCallback cb);
  /// Closes the fd now, discarding unread and unsent data; pending callbacks complete on a
  /// later iteration (see "Completion rule"). Idempotent: only the first reason counts.
  void close(absl::Status reason = absl::OkStatus());
  /// True once the stream is closed (by close(), an error or the peer).
  bool closed() const { return phase_ >= Phase::kClosed; }
  /// The status that closed the stream (OK while open; see the file comment).
  const absl::Status& error() const;

  // --- Socket ------------------------------------------------------------------------------
  /// TCP_NODELAY on the socket (Socket::set_nodelay()).
  absl::Status set_nodelay(bool on) { return socket_.set_nodelay(on); }
  /// For other options. Do not close or read/write it directly. Invalid after close().
  Socket& socket() { return socket_; }
  /// The socket's fd (owned by the stream); -1 after close().
  int fd() const { return socket_.fd(); }
  /// The peer's address (getpeername()); an error after close().
  absl::StatusOr<SocketAddress> peer_address() const { return socket_.peer_address(); }
  /// The loop the stream belongs to.
  IOLoop& loop() const { return *loop_; }
  /// Bytes read from the socket and not yet consumed by a read.
  size_t read_buffer_size() const { return read_buffer_.size(); }

 private:
  struct CreateToken {
    explicit CreateToken() = default;
  };

 public:
  /// Use create(); public only so that make_shared can allocate the stream and its control
  /// block together.
  IOStream(CreateToken, IOLoop& loop, Socket socket, const IOStreamOptions& options,
           std::unique_ptr<Transport> transport);

 private:
  /// Close order, one step at a time (see "Half-close" above).
  enum class Phase : uint8_t {
    kOpen,          ///< both directions open
    kPeerEof,       ///< the peer ended its side; writes go on (they flush, then the stream
                    ///< closes, unless allow_half_open)
    kShuttingDown,  ///< shutdown_write(): our end follows the queued bytes; reads go on
    kWriteShut,     ///< our end is sent; reads go on until the peer's EOF, then close
    kDraining,      ///< both sides ended: the queue flushes, then the stream closes
    kClosed,        ///< the fd is closed; the close callbacks are queued
    kFinished,      ///< the close callbacks ran
  };
  /// What the transport waits for besides the stream's own reads and writes (TLS only).
  enum TransportWait : uint8_t {
    kHandshaking = 1,          ///< the handshake is not finished; reads wait, writes queue
    kHandshakeNeedsWrite = 2,  ///< ...and it waits for WRITE (else READ)
    kReadNeedsWrite = 4,       ///< a read got kWantWrite
    kWriteNeedsRead = 8,       ///< a write got kWantRead
    kShutdownNeedsWrite = 16,  ///< our close_notify did not fit: retried when writable
    kFlushNeedsWrite = 32,     ///< the transport's pending output did not fit: likewise
  };
  /// What most streams never need, allocated on first use.
  static constexpr uint8_t kUnregistered = 0x80;
  struct SideState {
    absl::Status error;  ///< what closed the stream, if not OK
    HandshakeCallback on_handshake;
    /// A transport other than the plain one (which is shared and needs no state).
    std::unique_ptr<Transport> transport;
    /// shutdown_write_truncated(): the transport's goodbye is never sent.
    bool truncated_end = false;
    /// set_message_complete(false): not sent meanwhile.
    bool message_incomplete = false;
    /// The handshake finished since the last dispatch_epilogue(), which sends what waited for
    /// it without a byte to send (a write of nothing's callback, a shutdown_write()).
    bool handshake_finished = false;
    /// What the peer sent before a connection error, read by close_on_connection_error() and
    /// handed to the reads by run_close_callbacks().
    Buffer unread;
  };
  class LoopRef;
  class HandlerRef;
  class DispatchScope;
  /// set_write_watermarks() caps high (and so low) here: they are kept in 32 bits.
  static constexpr size_t kMaxWatermark = UINT32_MAX - 1;

  /// Plaintext a TLS transport decrypted ahead that no readiness event will announce.
  bool has_buffered_input() const {
    return side_ && side_->transport && side_->transport->has_buffered_input();
  }
  bool peer_ended() const;
  bool start_read(ReadCallback& cb);
  void after_read_started();
  void schedule_deferred();
  void dispatch_deferred();
  void dispatch_epilogue();
  void serve_reads();
  bool try_complete_read();
  void complete_read(absl::StatusOr<std::string> result);
  absl::Status closed_status() const;
  bool run_user(const char* what, absl::FunctionRef<void()> fn);
  template <typename F>
  void post(const char* what, F fn);
  void post_read(ReadCallback cb, absl::StatusOr<std::string> result);
  void post_write(WriteCallback cb, absl::Status status);
  void update_interest();
  uint32_t wanted_events() const;
  void on_events(uint32_t events);
  void advance_handshake();
  void flush_transport();
  void run_handshake_callback();
  void handle_read(bool force);
  // A write or the socket reported the connection gone: close with `error`, after reading what
  // the peer sent before it went (still in the kernel), for the reads at close.
  void close_on_connection_error(absl::Status error);
  void on_peer_eof(absl::Status truncation);
  void maybe_close_after_eof();
  WriteQueue& queue();
  template <typename Data>
  void write_one(Data data, WriteCallback on_flushed);
  absl::Status write_precheck() const;
  void flush_queue(size_t budget);
  void handle_write();
  void run_flush_callbacks();
  void check_high_watermark();
  void check_low_watermark();
  void do_shutdown_write();
  void run_close_callbacks();
  /// Appends what close_on_connection_error() kept to the read buffer (dispatches only).
  void take_unread();
  /// Destroys pending callbacks unrun when the loop abandons the stream (see LoopRef).
  void drop_callbacks();
  SideState& side();
  /// Whether the socket is TCP, whose reset tells the peer "cut short" (see
  /// set_message_complete()); a Unix-domain peer reads EOF after a reset too.
  bool can_reset() const;
  void set_error(absl::Status status);

  /// Members are ordered to avoid padding: sizeof(IOStream) is most of what an idle
  /// connection costs (272 bytes on x86-64; the loop's handler entry adds 48). What a
  /// typical server sets at accept (close, streaming-read and watermark callbacks, the
  /// watermarks) lives here rather than in side allocations. [[no_unique_address]] lets the
  /// member after read_ and read_buffer_ use their tail padding (8 and 4 bytes: ReadRequest is
  /// 16-aligned for its AnyInvocable, Buffer ends in a uint32_t).
  ReadCallback read_cb_;  ///< the outstanding read's completion
  CloseCallback close_cb_;
  WatermarkCallback on_high_;  ///< set_high_watermark_callback
  WatermarkCallback on_low_;
  [[no_unique_address]] internal::ReadRequest read_;  ///< the outstanding read's mode and progress
  IOLoop* loop_;
  [[no_unique_address]] Buffer read_buffer_;
  uint32_t max_buffer_size_;
  /// Queued output and its callbacks; allocated only while something is queued, so the
  /// fast path (send completes) and idle streams pay nothing.
  std::unique_ptr<WriteQueue> writes_;
  std::unique_ptr<SideState> side_;
  uint32_t watermark_high_ = 0;  ///< set_write_watermarks (0: none)
  uint32_t watermark_low_ = 0;
  Socket socket_;
  Phase phase_ = Phase::kOpen;
  uint8_t transport_wait_ = 0;  ///< TransportWait bits
  /// IOLoop::READ | WRITE as registered with the loop, or kUnregistered.
  uint8_t interest_ = kUnregistered;
  bool peer_eof_ = false;  ///< the peer ended its side (kept after the close, for statuses)
  bool paused_ = false;
  bool dispatching_ = false;  ///< inside on_events(), dispatch_deferred() or close callbacks
  bool deferred_scheduled_ = false;
  const bool allow_half_open_;
  bool above_high_ = false;  ///< over the high watermark, the low not yet reached
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_IO_STREAM_H_
