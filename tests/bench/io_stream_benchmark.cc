// IOStream benchmarks: read_until/write ping-pong over a socketpair, bulk throughput, one
// socket read by readv and by recv, and the memory an idle connection costs (RSS with 10,000
// idle streams).
#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/buffer.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"

namespace ioloop::net {
namespace {

std::pair<std::shared_ptr<IOStream>, std::shared_ptr<IOStream>> stream_pair(IOLoop& loop) {
  auto pair = Socket::pair();
  if (!pair.ok()) std::abort();
  return {IOStream::create(loop, std::move(pair->first)),
          IOStream::create(loop, std::move(pair->second))};
}

// Server echoes each "\n"-terminated message; the client sends the next one when the echo
// arrives. One benchmark iteration = kRounds round trips.
void BM_PingPongReadUntil(benchmark::State& state) {
  constexpr int kRounds = 100;
  IOLoop loop;
  auto [client, server] = stream_pair(loop);
  const std::string message = std::string(static_cast<size_t>(state.range(0)) - 1, 'm') + "\n";

  std::function<void()> serve = [&, s = server.get()] {
    s->read_until("\n", [&, s](absl::StatusOr<std::string> r) {
      if (!r.ok()) return;
      s->write(*std::move(r));
      serve();
    });
  };
  serve();
  int left = 0;
  std::function<void()> ping = [&, c = client.get()] {
    c->write(message);
    c->read_until("\n", [&](absl::StatusOr<std::string> r) {
      if (!r.ok() || --left == 0) {
        loop.stop();
        return;
      }
      ping();
    });
  };
  for (auto _ : state) {
    left = kRounds;
    ping();
    loop.start();
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
  state.SetBytesProcessed(state.iterations() * kRounds * 2 * static_cast<int64_t>(message.size()));
  client->close();
  server->close();
}
BENCHMARK(BM_PingPongReadUntil)->Arg(64)->Arg(4096);

// One stream writes `range(0)`-byte chunks as fast as the kernel takes them; the other
// consumes them with read_streaming. One iteration = 64 MiB.
void BM_BulkThroughput(benchmark::State& state) {
  constexpr size_t kTotal = 64 << 20;
  const size_t chunk = static_cast<size_t>(state.range(0));
  IOLoop loop;
  auto [writer, reader] = stream_pair(loop);
  size_t received = 0;
  reader->read_streaming(
      [&](absl::string_view data) {
        received += data.size();
        if (received == kTotal) loop.stop();
      },
      [](absl::StatusOr<std::string>) {});
  const std::string block(chunk, 'b');
  for (auto _ : state) {
    received = 0;
    // Keep about 4 MiB queued: refill from the low watermark.
    size_t sent = 0;
    auto refill = [&] {
      while (sent < kTotal && writer->write_buffer_size() < (4u << 20)) {
        writer->write(block);
        sent += chunk;
      }
    };
    writer->set_write_watermarks(4u << 20, 1u << 20).IgnoreError();  // low < high
    writer->set_low_watermark_callback(refill);
    refill();
    loop.start();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kTotal));
  writer->close();
  reader->close();
}
BENCHMARK(BM_BulkThroughput)->Arg(4096)->Arg(64 * 1024)->Unit(benchmark::kMillisecond);

// One read of a 200-byte message from a loopback TCP socket into an empty lending buffer, the
// way IOStream reads a small request or response: Buffer::read_fd() (readv) against
// Buffer::read_socket() (recv), which IOStream uses. Only the read is timed (the send that precedes
// it is the same for both). Arg: 0 = read_fd, 1 = read_socket.
void BM_SocketRead(benchmark::State& state) {
  const bool socket = state.range(0) == 1;
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    state.SkipWithError("no loopback listener");
    return;
  }
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&addr), len) != 0) std::abort();
  const int server = ::accept(listener, nullptr, nullptr);
  const std::string message(200, 'r');
  Buffer buffer;
  buffer.set_lending(true);  // as IOStream's: empty, so each read is one iovec (recv)
  int err = 0;
  for (auto _ : state) {
    if (::send(client, message.data(), message.size(), 0) != 200) std::abort();
    const auto start = std::chrono::steady_clock::now();
    const ssize_t n = socket ? buffer.read_socket(server, &err) : buffer.read_fd(server, &err);
    const auto end = std::chrono::steady_clock::now();
    if (n != 200) std::abort();
    buffer.retrieve_all();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  state.SetLabel(socket ? "read_socket (recv)" : "read_fd (readv)");
  ::close(client);
  ::close(server);
  ::close(listener);
}
BENCHMARK(BM_SocketRead)->Arg(0)->Arg(1)->UseManualTime();

size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// 10,000 streams, each after one small request/response and now idle with a read_until
// pending (what a keep-alive server holds). The user drops its pointers: the loop's handler
// owns each stream. RSS growth / connections = memory per idle connection (IOStream with
// its shared_ptr control block, the loop's handler entry and fd slot). As in a real
// server, the client ends live in another process (a forked child), and this process holds
// one fd per connection, numbered densely.
void BM_IdleConnectionMemory(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  // Two fds per connection until the fork. Raise the soft limit to the hard one; if that is
  // still short, try raising both (works with CAP_SYS_RESOURCE); else measure fewer.
  struct rlimit rl;
  const rlim_t need = static_cast<rlim_t>(2 * n + 100);
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < need) {
      struct rlimit more = {need, need};
      ::setrlimit(RLIMIT_NOFILE, &more);
    }
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < need) n = static_cast<int>((rl.rlim_cur - 100) / 2);
  if (n < 100) {
    state.SkipWithError("RLIMIT_NOFILE too low for the idle-connection benchmark");
    return;
  }
  for (auto _ : state) {
    IOLoop loop;
    std::vector<int> peers;
    peers.reserve(static_cast<size_t>(n));
    std::vector<int> stream_fds;
    stream_fds.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        state.SkipWithError("socketpair failed");
        return;
      }
      stream_fds.push_back(sv[0]);
      peers.push_back(sv[1]);
    }
    int control[2];
    if (::pipe(control) != 0) std::abort();
    const pid_t child = ::fork();
    if (child < 0) std::abort();
    if (child == 0) {  // the clients: send one request each, then wait to be told to go
      ::close(control[1]);
      for (int fd : stream_fds) ::close(fd);
      for (int fd : peers) {
        if (::send(fd, "ping\n", 5, MSG_NOSIGNAL) != 5) ::_exit(1);
      }
      char c;
      while (::read(control[0], &c, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(control[0]);
    for (int fd : peers) ::close(fd);
    // Renumber into the holes the peers left, so fds are dense as in a server.
    for (int& fd : stream_fds) {
      int lower = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (lower >= 0 && lower < fd) {
        ::close(fd);
        fd = lower;
      } else if (lower >= 0) {
        ::close(lower);
      }
    }
    // Give back what earlier benchmarks (or repetitions) freed, so it is not reused here
    // invisibly to RSS.
    ::malloc_trim(0);
    const size_t before = rss_bytes();
    const size_t heap_before = ::mallinfo2().uordblks;
    // In batches of 100, so that transient per-request allocations (the first read's
    // callback, the loop's event array) are reused rather than counted 10,000 times.
    struct Progress {
      IOLoop* loop;
      int answered = 0;
      int target = 0;
    } progress{&loop};
    for (int i = 0; i < n; ++i) {
      auto stream = IOStream::create(loop, Socket(stream_fds[static_cast<size_t>(i)]));
      IOStream* s = stream.get();
      // Two pointers: fits AnyInvocable's inline storage, as a server's usual capture does.
      stream->read_until("\n", [p = &progress, s](absl::StatusOr<std::string> r) {
        if (!r.ok()) return;
        s->write("pong\n");
        s->read_until("\n", [](absl::StatusOr<std::string>) {});  // idle from here on
        if (++p->answered == p->target) p->loop->stop();
      });
      if ((i + 1) % 100 == 0 || i + 1 == n) {
        progress.target = i + 1;
        loop.start();
      }
    }
    const size_t after = rss_bytes();
    const size_t heap_after = ::mallinfo2().uordblks;
    state.counters["bytes_per_connection"] =
        static_cast<double>(after - before) / static_cast<double>(n);
    // Heap bytes in use (malloc's view, chunk headers included): the part of the RSS that
    // the library's allocations explain.
    state.counters["heap_bytes_per_connection"] =
        static_cast<double>(heap_after - heap_before) / static_cast<double>(n);
    state.counters["sizeof_IOStream"] = static_cast<double>(sizeof(IOStream));
    state.counters["connections"] = n;
    ::close(control[1]);  // the child exits; every stream sees EOF and closes
    int status = 0;
    ::waitpid(child, &status, 0);
    while (loop.stats().handlers > 1) {
      loop.add_callback([&loop] { loop.stop(); });
      loop.start();
    }
  }
}
BENCHMARK(BM_IdleConnectionMemory)->Arg(10000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ioloop::net

BENCHMARK_MAIN();
