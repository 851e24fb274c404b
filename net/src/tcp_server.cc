#include "ioloop/net/tcp_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "ioloop/logging.h"
#include "ioloop/mutex.h"
#include "ioloop/rate_limiter.h"
#include "thread_signals.h"

namespace ioloop::net {

struct TCPServer::Handoff {
  explicit Handoff(StreamHandler h) : handler(std::move(h)) {}
  StreamHandler handler;
  std::atomic<uint64_t> handshake_failures{0};
  Mutex log_mu;
  LogRateLimiter log_limiter ABSL_GUARDED_BY(log_mu){5, std::chrono::seconds(1)};

  // Counts the failure and logs it, at most a few lines a second over all workers.
  void handshake_failed(const SocketAddress& peer, const absl::Status& status) {
    handshake_failures.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    {
      MutexLock lock(&log_mu);
      if (!log_limiter.allow(Clock::now(), &suppressed)) return;
    }
    logger().warn("TCPServer: handshake with {} failed: {}{}", peer.to_string(), status.ToString(),
                  suppressed_note(suppressed));
  }
};

struct TCPServer::Worker {
  IOLoop* loop = nullptr;
  std::unique_ptr<IOLoop> owned_loop;  // null when the worker is the caller's loop
  std::thread thread;
  // Touched only on the worker's loop thread once it runs. acceptors[i] accepts on
  // listeners[i].
  std::vector<Socket> listeners;
  std::vector<std::unique_ptr<Acceptor>> acceptors;
  std::vector<std::weak_ptr<IOStream>> streams;
  size_t streams_after_prune = 0;

  // Keeps the first `n` listeners; the acceptors go before the sockets they watch.
  void keep_listeners(size_t n) {
    if (acceptors.size() > n) acceptors.resize(n);
    while (listeners.size() > n) listeners.pop_back();
  }

  void close_listeners(bool close_streams) {
    keep_listeners(0);
    if (!close_streams) return;
    std::vector<std::weak_ptr<IOStream>> open;
    open.swap(streams);
    for (auto& weak : open) {
      if (auto stream = weak.lock()) stream->close();
    }
  }
};

namespace {

// Binds one more listener on `addr` (same port) for another worker's SO_REUSEPORT group.
absl::StatusOr<Socket> bind_copy(const SocketAddress& addr, int backlog) {
  absl::StatusOr<Socket> sock = Socket::create(addr.family());
  if (!sock.ok()) return sock.status();
  if (absl::Status s = sock->set_reuse_addr(true); !s.ok()) return s;
  if (absl::Status s = sock->set_reuse_port(true); !s.ok()) return s;
  if (addr.family() == AF_INET6) {
    if (absl::Status s = sock->set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY"); !s.ok()) {
      return s;
    }
  }
  if (::bind(sock->fd(), addr.get(), addr.length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", addr.to_string()));
  }
  if (::listen(sock->fd(), backlog) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen ", addr.to_string()));
  }
  return sock;
}

// Options under which an error path would spin instead of backing off, or under which no
// connection could be served.
absl::Status validate(const TCPServerOptions& options) {
  if (options.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TCPServer: handshake_timeout must be positive, got ",
                     absl::FormatDuration(options.handshake_timeout)));
  }
  const AcceptOptions& accept = options.accept_options;
  if (accept.max_accepts_per_wakeup <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("TCPServer: accept_options.max_accepts_per_wakeup must be positive, got ",
                     accept.max_accepts_per_wakeup));
  }
  if (accept.emfile_backoff <= absl::ZeroDuration() ||
      accept.emfile_backoff == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TCPServer: accept_options.emfile_backoff must be positive and finite, got ",
                     absl::FormatDuration(accept.emfile_backoff)));
  }
  return absl::OkStatus();
}

}  // namespace

TCPServer::TCPServer(IOLoop& loop, StreamHandler handler, TCPServerOptions options)
    : loop_(loop),
      handoff_(std::make_shared<Handoff>(std::move(handler))),
      options_(std::move(options)) {}

uint64_t TCPServer::handshake_failures() const {
  return handoff_->handshake_failures.load(std::memory_order_relaxed);
}

TCPServer::~TCPServer() {
  waiting_.clear();
  shut_down_workers();
}

void TCPServer::shut_down_workers() {
  for (auto& w : workers_) {
    Worker* worker = w.get();
    if (!w->thread.joinable()) {
      // The caller's loop, or a worker loop whose thread never started.
      worker->close_listeners(/*close_streams=*/true);
      continue;
    }
    // Close everything, then stop once the completions the closed streams queued have run
    // on their own thread: read/write/close callbacks, and what those queue in turn (an HTTP
    // connection's close reaches a deferred response's close callback a hop later).
    w->loop->add_callback([worker] {
      worker->close_listeners(/*close_streams=*/true);
      worker->loop->stop_when_idle();
    });
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // Worker loops, and the streams still registered on them, are destroyed here, after
  // their threads have finished.
  workers_.clear();
}

absl::Status TCPServer::listen(uint16_t port, absl::string_view address) {
  BindOptions bind_options;
  bind_options.backlog = options_.backlog;
  bind_options.reuse_port = options_.reuse_port;
  absl::StatusOr<std::vector<Socket>> sockets = bind_sockets(port, address, bind_options);
  if (!sockets.ok()) return sockets.status();
  return add_sockets(*std::move(sockets));
}

absl::Status TCPServer::add_sockets(std::vector<Socket> sockets) {
  std::vector<SocketAddress> added;
  for (const Socket& s : sockets) {
    absl::StatusOr<SocketAddress> addr = s.local_address();
    if (!addr.ok()) return addr.status();
    added.push_back(*addr);
  }
  if (!started()) {
    for (Socket& s : sockets) waiting_.push_back(std::move(s));
    addresses_.insert(addresses_.end(), added.begin(), added.end());
    return absl::OkStatus();
  }
  if (absl::Status s = activate(std::move(sockets)); !s.ok()) return s;
  addresses_.insert(addresses_.end(), added.begin(), added.end());
  return absl::OkStatus();
}

absl::Status TCPServer::start(int num_threads) {
  if (!handoff_->handler) return absl::InvalidArgumentError("TCPServer::start: empty handler");
  if (num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TCPServer::start: num_threads must be >= 1, got ", num_threads));
  }
  if (started()) return absl::FailedPreconditionError("TCPServer::start: already started");
  if (absl::Status s = validate(options_); !s.ok()) return s;
  if (num_threads == 1) {
    auto w = std::make_unique<Worker>();
    w->loop = &loop_;
    workers_.push_back(std::move(w));
  } else {
    IOLoop::Options loop_options;
    loop_options.poller = options_.worker_poller;
    for (int i = 0; i < num_threads; ++i) {
      auto w = std::make_unique<Worker>();
      absl::StatusOr<std::unique_ptr<IOLoop>> loop = IOLoop::create(loop_options);
      if (!loop.ok()) {
        workers_.clear();
        return loop.status();
      }
      w->owned_loop = *std::move(loop);
      w->loop = w->owned_loop.get();
      workers_.push_back(std::move(w));
    }
  }
  // The worker threads start only once every listener is installed: their loops are not
  // running yet, so the install runs here, and a failure leaves no thread to stop.
  std::vector<Socket> waiting;
  waiting.swap(waiting_);
  if (absl::Status s = activate(std::move(waiting)); !s.ok()) {
    shut_down_workers();  // closes what was installed; no thread runs yet
    addresses_.clear();
    return s;
  }
  if (num_threads > 1) {
    // Workers block signals so that SIGINT/SIGTERM reach the main loop's signalfd.
    internal::ScopedLibraryThreadMask mask;
    size_t started = 0;
    try {
      for (auto& w : workers_) {
        IOLoop* loop = w->loop;
        w->thread = std::thread([loop] { loop->start(); });
        ++started;
      }
    } catch (const std::system_error& e) {  // EAGAIN: the thread or memory limit
      shut_down_workers();  // stops and joins the threads started, closes every listener
      addresses_.clear();
      return absl::ResourceExhaustedError(
          absl::StrCat("TCPServer::start: cannot start worker thread ", started + 1, " of ",
                       num_threads, ": ", e.what()));
    }
  }
  return absl::OkStatus();
}

absl::Status TCPServer::install(Worker* w, std::vector<Socket>& set) {
  const size_t before = w->listeners.size();
  for (Socket& sock : set) {
    absl::StatusOr<std::unique_ptr<Acceptor>> acceptor = add_accept_handler(
        *w->loop, sock.fd(),
        [this, w](Socket conn, SocketAddress peer) { on_connection(w, std::move(conn), peer); },
        options_.accept_options);
    if (!acceptor.ok()) {
      w->keep_listeners(before);  // all or nothing
      absl::StatusOr<SocketAddress> addr = sock.local_address();
      return absl::Status(
          acceptor.status().code(),
          absl::StrCat("TCPServer: cannot accept on ", addr.ok() ? addr->to_string() : "?", " (fd ",
                       sock.fd(), "): ", acceptor.status().message()));
    }
    w->acceptors.push_back(*std::move(acceptor));
    w->listeners.push_back(std::move(sock));
  }
  return absl::OkStatus();
}

absl::Status TCPServer::activate(std::vector<Socket> sockets) {
  const size_t n = workers_.size();
  // One set of listeners per worker: the given sockets for worker 0, copies for the rest.
  std::vector<std::vector<Socket>> sets(n);
  for (Socket& sock : sockets) {
    absl::StatusOr<SocketAddress> addr = sock.local_address();
    if (!addr.ok()) return addr.status();
    const bool tcp = addr->family() == AF_INET || addr->family() == AF_INET6;
    if (n > 1 && tcp) {
      absl::StatusOr<int> reuse = sock.get_option(SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT");
      if (!reuse.ok()) return reuse.status();
      if (*reuse == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "TCPServer: listener ", addr->to_string(),
            " lacks SO_REUSEPORT, which start(N > 1) needs; bind it with reuse_port=true"));
      }
      for (size_t i = 1; i < n; ++i) {
        absl::StatusOr<Socket> copy = bind_copy(*addr, options_.backlog);
        if (!copy.ok()) return copy.status();
        sets[i].push_back(*std::move(copy));
      }
    }
    sets[0].push_back(std::move(sock));
  }
  // Not running yet (start()) or the caller's own loop: install right here.
  const bool workers_run = n > 0 && workers_[0]->thread.joinable();
  if (!workers_run) {
    std::vector<size_t> before(n);
    for (size_t i = 0; i < n; ++i) {
      before[i] = workers_[i]->listeners.size();
      if (absl::Status s = install(workers_[i].get(), sets[i]); !s.ok()) {
        for (size_t j = 0; j < i; ++j) workers_[j]->keep_listeners(before[j]);
        return s;
      }
    }
    return absl::OkStatus();
  }
  return install_on_running_workers(std::move(sets));
}

// Each worker installs its set on its own thread, reports, and then holds its loop until
// every worker has reported: if one refuses, the others remove their part before accepting
// a single connection from it, so the batch is all or nothing. The caller blocks meanwhile.
absl::Status TCPServer::install_on_running_workers(std::vector<std::vector<Socket>> sets) {
  struct Round {
    Mutex mu;
    std::vector<absl::Status> results ABSL_GUARDED_BY(mu);
    size_t reported ABSL_GUARDED_BY(mu) = 0;
    size_t finished ABSL_GUARDED_BY(mu) = 0;
    bool decided ABSL_GUARDED_BY(mu) = false;
    bool commit ABSL_GUARDED_BY(mu) = false;
  };
  const size_t n = workers_.size();
  auto round = std::make_shared<Round>();
  {
    MutexLock lock(&round->mu);
    round->results.resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    Worker* w = workers_[i].get();
    w->loop->add_callback([this, w, i, round, set = std::move(sets[i])]() mutable {
      const size_t before = w->listeners.size();
      absl::Status s = install(w, set);
      set.clear();  // closes what was not installed before the caller returns
      bool commit = false;
      {
        MutexLock lock(&round->mu);
        round->results[i] = s;
        ++round->reported;
        if (s.ok()) {
          round->mu.await([&round]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return round->decided; });
          commit = round->commit;
        }
      }
      if (!commit) w->keep_listeners(before);
      MutexLock lock(&round->mu);
      ++round->finished;
    });
  }
  MutexLock lock(&round->mu);
  round->mu.await([r = round.get()]()
                      ABSL_NO_THREAD_SAFETY_ANALYSIS { return r->reported == r->results.size(); });
  absl::Status first;
  for (const absl::Status& s : round->results) {
    if (!s.ok()) {
      first = s;
      break;
    }
  }
  round->commit = first.ok();
  round->decided = true;
  // Wait for the roll-backs too: when add_sockets() fails, no part of the batch listens.
  round->mu.await([r = round.get()]()
                      ABSL_NO_THREAD_SAFETY_ANALYSIS { return r->finished == r->results.size(); });
  return first;
}

void TCPServer::on_connection(Worker* w, Socket conn, const SocketAddress& peer) {
  if (options_.nodelay && (peer.family() == AF_INET || peer.family() == AF_INET6)) {
    (void)conn.set_nodelay(true);  // best effort: the connection works without it
  }
  std::unique_ptr<Transport> transport;
  if (options_.tls) {
    absl::StatusOr<std::unique_ptr<Transport>> made = options_.tls->server_transport(conn.fd());
    if (!made.ok()) {
      handoff_->handshake_failed(peer, made.status());
      return;  // `conn` closes
    }
    transport = *std::move(made);
  }
  IOStreamOptions stream_options = options_.stream_options;
  stream_options.socket_nonblocking = true;  // accept4(SOCK_NONBLOCK)
  std::shared_ptr<IOStream> stream =
      IOStream::create(*w->loop, std::move(conn), stream_options, std::move(transport));
  // Forget closed streams now and then, so the list tracks only the open ones.
  if (w->streams.size() >= 2 * w->streams_after_prune + 64) {
    std::erase_if(w->streams, [](const std::weak_ptr<IOStream>& s) { return s.expired(); });
    w->streams_after_prune = w->streams.size();
  }
  w->streams.push_back(stream);
  if (!options_.tls) {
    // The handler may destroy the server: its closure lives until it returns.
    const std::shared_ptr<Handoff> handoff = handoff_;
    hand_over(*handoff, stream, peer);
    return;
  }
  // The handshake's deadline counts from accept. The timer and the handshake callback hold
  // the stream weakly and the server not at all: either may run after the server is gone.
  std::weak_ptr<IOStream> weak = stream;
  const absl::Duration limit = options_.handshake_timeout;
  TimeoutHandle timer = w->loop->call_later(limit, [weak, limit] {
    if (std::shared_ptr<IOStream> s = weak.lock()) {
      s->close(absl::DeadlineExceededError(
          absl::StrCat("TLS handshake not finished within ", absl::FormatDuration(limit))));
    }
  });
  stream->wait_for_handshake([handoff = std::weak_ptr<Handoff>(handoff_), weak, peer, timer,
                              loop = w->loop](absl::Status status) mutable {
    loop->remove_timeout(timer);
    std::shared_ptr<Handoff> h = handoff.lock();
    std::shared_ptr<IOStream> s = weak.lock();
    if (!h || !s) return;
    if (status.ok()) {
      hand_over(*h, s, peer);
    } else if (!s->error().ok()) {
      h->handshake_failed(peer, status);
    }
    // Else the stream was closed without an error before its handshake finished: only the
    // server does that (stop(close_streams), the destructor), and it is no failure.
  });
}

// An exception from the handler is the stream's failure, not the server's: it is logged
// and counted by the loop, that stream is closed with it, and accepting goes on.
void TCPServer::hand_over(Handoff& handoff, const std::shared_ptr<IOStream>& stream,
                          const SocketAddress& peer) {
  absl::Status s = stream->loop().invoke_guarded("TCPServer stream handler",
                                                 [&] { handoff.handler(stream, peer); });
  if (!s.ok()) stream->close(std::move(s));
}

void TCPServer::stop(bool close_streams) {
  waiting_.clear();
  for (auto& w : workers_) {
    Worker* worker = w.get();
    if (w->owned_loop) {
      w->loop->add_callback([worker, close_streams] { worker->close_listeners(close_streams); });
    } else {
      worker->close_listeners(close_streams);
    }
  }
}

}  // namespace ioloop::net
