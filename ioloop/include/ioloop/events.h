/// @file ioloop/events.h
/// Readiness event masks shared by IOLoop handlers and the Poller backends. The values are
/// epoll's (and, for the first three, also poll()'s), so the epoll backend passes them
/// through untranslated.
#ifndef IOLOOP_EVENTS_H_
#define IOLOOP_EVENTS_H_

#include <cstdint>
#include <string>

namespace ioloop {

/// Readable, or a listening socket has a connection waiting, or the peer sent EOF.
inline constexpr uint32_t READ = 0x001;  ///< EPOLLIN, POLLIN
/// Writable: the send buffer has room.
inline constexpr uint32_t WRITE = 0x004;  ///< EPOLLOUT, POLLOUT
/// Error or hang-up. epoll and poll always report it, whether or not it was asked for. select
/// has no error set: there an error or hang-up shows as READ or WRITE if those are watched, and
/// a registration for ERROR alone hears nothing (ERROR comes only for an fd closed while
/// registered, once).
inline constexpr uint32_t ERROR = 0x018;  ///< EPOLLERR | EPOLLHUP
/// Edge-triggered registration; only the epoll backend accepts it.
inline constexpr uint32_t EDGE = 1u << 31;  ///< EPOLLET

/// "READ|WRITE|ERROR" style text for logs and test failure messages.
std::string events_to_string(uint32_t events);

}  // namespace ioloop

#endif  // IOLOOP_EVENTS_H_
