// File: net/src/io_stream_names.h
// What IOStream calls each kind of user callback in the log and in the status that closes its
// stream when the callback throws (IOStream::run_user). Private to io_stream*.cc, which all
// name some of them: one definition each, so that the log reads the same from every file.
#ifndef IOLOOP_NET_SRC_IO_STREAM_NAMES_H_
#define IOLOOP_NET_SRC_IO_STREAM_NAMES_H_

namespace ioloop::net::internal {

inline constexpr char kReadCallback[] = "IOStream read callback";
inline constexpr char kStreamingCallback[] = "IOStream streaming callback";
inline constexpr char kWriteCallback[] = "IOStream write callback";
inline constexpr char kHighCallback[] = "IOStream high watermark callback";
inline constexpr char kLowCallback[] = "IOStream low watermark callback";
inline constexpr char kHandshakeCallback[] = "IOStream handshake callback";
inline constexpr char kCloseCallback[] = "IOStream close callback";

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_IO_STREAM_NAMES_H_
