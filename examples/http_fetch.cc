// http_fetch: a small curl on HTTPClient. Fetches one URL and writes the body to stdout.
//
//   http_fetch [--method=GET] [--data=BODY] [--header='Name: value']... [--output=FILE]
//              [--timeout=0s] [--include] [--follow_redirects=true] [--max_redirects=5]
//              [--ca_file=PEM] [--log_level=warn] URL
//   http_fetch http://127.0.0.1:8080/                 # Hello, world!
//   http_fetch --include --data='a=1' http://127.0.0.1:8080/form > body 2> head
//   http_fetch --ca_file=ca.pem https://localhost:8443/
//
// The body goes to stdout (or --output) byte for byte, binary-safe, as it arrives. --output's
// file is replaced only once a response arrives (curl -o): a failed transfer leaves it alone.
// --include writes the final response's status line and fields, as received, then an empty
// line, to stderr (CRLF line ends, like curl -i), each interim (1xx) head first the same way.
// --method defaults to GET, or POST when --data is given (even empty, as curl -d '').
// --header may be repeated (values may contain commas); it overrides the client's own
// User-Agent and Host. --timeout bounds the whole
// transfer like curl's --max-time, connecting included, and so waiting on an output nobody
// reads (examples/body_output.h); 0 means none (connecting still times out after 20 s). Its
// error line says where the transfer was: "(GET URL, connecting)", "... waiting for the
// response)", "... reading the body)" and so on.
//
// HTTPS: https:// URLs (and redirects between http and https) are fetched over TLS 1.2 or 1.3,
// offering ALPN "http/1.1". The server's certificate must verify against the system's trusted
// CAs or, with --ca_file, against the CAs in that PEM file only, and must be issued for the
// URL's host (sent as SNI). A certificate that does not verify is a transport error (exit 2)
// whose line names OpenSSL's reason, e.g. "certificate verify failed: unable to get local
// issuer certificate".
//
// Exit status: 0 for a final 2xx or 3xx response, 1 for 4xx or 5xx (the body is still
// written), 2 for a transport error or bad usage, with one line on stderr naming the reason:
// refused, timeout, malformed response, a body cut short, too many redirects, a certificate
// that does not verify, a missing URL, a bad --header or --timeout (--timeout=xyz too), ...
// (An unknown flag is reported by absl's flag parser, which exits 1 before anything runs.)
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "body_output.h"
#include "example_support.h"
#include "example_tls.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_client.h"

ABSL_FLAG(std::string, method, "", "request method (default GET, or POST with --data)");
ABSL_FLAG(std::string, data, "", "request body, sent with Content-Length");
// Read from argv before absl sees it (absl keeps only the last value of a repeated flag, and a
// std::vector flag would split values at commas); declared here for --help.
ABSL_FLAG(std::string, header, "", "a request header field 'Name: value'; repeatable");
ABSL_FLAG(std::string, output, "", "write the body to this file instead of stdout");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "bound on the whole transfer, connect included (0: none)");
ABSL_FLAG(bool, include, false, "write the status line and header fields to stderr");
ABSL_FLAG(bool, follow_redirects, true, "follow 301, 302, 303, 307 and 308 redirects");
ABSL_FLAG(int, max_redirects, 5, "redirects to follow at most (then exit 2)");
ABSL_FLAG(std::string, ca_file, "",
          "https: trust only the CAs in this PEM file (default: the system's trusted CAs)");
ABSL_FLAG(std::string, log_level, "warn", "trace, debug, info, warn, error, critical or off");

namespace {

constexpr int kExitOk = 0;
constexpr int kExitHTTPError = 1;
constexpr int kExitTransport = 2;

// When --timeout runs out (TimePoint::max() without one): the body and --include's head wait
// for room in their output until then.
ioloop::TimePoint transfer_deadline = ioloop::TimePoint::max();

// Standard error through a writer that never blocks past a deadline (body_output.h): with
// `2>&1` into a pipe nobody reads, the last line must not hold the process there either.
ioloop::examples::BodyOutput& standard_error() {
  static ioloop::examples::BodyOutput err = ioloop::examples::BodyOutput::inherited(STDERR_FILENO);
  return err;
}

int fail(absl::string_view message) {
  // A second past the transfer's deadline (it may say that the deadline passed), else none.
  ioloop::TimePoint until = ioloop::TimePoint::max();
  if (transfer_deadline != ioloop::TimePoint::max()) {
    until = std::max(transfer_deadline, ioloop::Clock::now()) + std::chrono::seconds(1);
  }
  // Nowhere to report a failure to write it.
  standard_error().write(absl::StrCat("http_fetch: ", message, "\n"), until).IgnoreError();
  return kExitTransport;
}

// What the flag library cannot tell from argv: the --header values, as many as given, and
// whether --data is set at all (--data='' posts an empty body, as curl -d '' does, and absl's
// value cannot tell that from unset).
struct RawFlags {
  std::vector<std::string> headers;
  bool data_given = false;
};

// Removes every --header=V and "--header V" from argv (keeping argv[0] and the rest in order),
// and notes --data=V, -data=V or "--data V".
RawFlags take_raw_flags(int& argc, char** argv) {
  RawFlags flags;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {  // the rest are positional
      while (i < argc) argv[out++] = argv[i++];
      break;
    }
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) {
      argv[out++] = argv[i];
    } else if (absl::ConsumePrefix(&arg, "header=")) {
      flags.headers.emplace_back(arg);
    } else if (arg == "header" && i + 1 < argc) {
      flags.headers.emplace_back(argv[++i]);
    } else {
      if (absl::ConsumePrefix(&arg, "data") && (arg.empty() || arg.front() == '=')) {
        flags.data_given = true;
      }
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  ioloop::examples::hold_standard_fds();
  // First: a closed stdout or stderr is a write error, not a kill, for a usage error's line too.
  ioloop::examples::ignore_sigpipe();
  absl::SetProgramUsageMessage("fetches URL over HTTP/1.1 and writes the body to stdout");
  const RawFlags raw_flags = take_raw_flags(argc, argv);
  absl::StatusOr<std::vector<std::string>> positional =
      ioloop::examples::parse_command_line(argc, argv, /*positional=*/1);
  namespace net = ioloop::net;

  if (absl::Status s = ioloop::examples::configure_logging(absl::GetFlag(FLAGS_log_level));
      !s.ok()) {
    return fail(s.message());
  }
  if (!positional.ok()) return fail(positional.status().message());
  if (positional->empty()) return fail("usage: http_fetch [flags] URL (see --help)");

  net::HTTPClientRequest request;
  request.url = positional->front();
  const std::string data = absl::GetFlag(FLAGS_data);
  request.method = absl::GetFlag(FLAGS_method);
  if (request.method.empty()) request.method = raw_flags.data_given ? "POST" : "GET";
  request.body = data;
  for (const std::string& arg : raw_flags.headers) {
    size_t colon = arg.find(':');
    if (colon == std::string::npos || colon == 0) {
      return fail(absl::StrCat("--header must be 'Name: value', got '", arg, "'"));
    }
    request.headers.add(arg.substr(0, colon),
                        std::string(absl::StripAsciiWhitespace(arg.substr(colon + 1))));
  }
  request.follow_redirects = absl::GetFlag(FLAGS_follow_redirects);
  request.max_redirects = absl::GetFlag(FLAGS_max_redirects);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout < absl::ZeroDuration()) return fail("--timeout must not be negative");
  // The whole transfer is bounded by the timer below; the client's own per-exchange limit
  // would cut a long download short, and its connect_timeout (left at its default without
  // --timeout) would fire first and name a limit http_fetch has no flag for.
  request.request_timeout = timeout;
  if (timeout > absl::ZeroDuration()) request.connect_timeout = absl::ZeroDuration();  // none

  absl::StatusOr<ioloop::examples::BodyOutput> out =
      ioloop::examples::BodyOutput::open(absl::GetFlag(FLAGS_output));
  if (!out.ok()) return fail(out.status().message());
  // A failed write (stdout closed, disk full) ends the transfer: `stop_transfer` cancels the
  // fetch (set once it exists), and the error is kept for the one line at the end. An output
  // that takes nothing until the deadline is the transfer's timeout (`timed_out`, below).
  std::string write_error;
  bool timed_out = false;
  absl::AnyInvocable<void()> stop_transfer;
  // A write's result: past the deadline, or (`keep_error`) failed otherwise, it stops the
  // transfer. Write errors on stderr are ignored, as fprintf's were.
  const auto after_write = [&](const absl::Status& s, bool keep_error) {
    if (absl::IsDeadlineExceeded(s)) {
      timed_out = true;
    } else if (s.ok() || !keep_error) {
      return;
    } else {
      write_error = std::string(s.message());
    }
    if (stop_transfer) stop_transfer();
  };
  request.streaming_callback = [&](absl::string_view piece) {
    if (!write_error.empty() || timed_out) return;
    after_write(out->write(piece, transfer_deadline), /*keep_error=*/true);
  };
  if (absl::GetFlag(FLAGS_include)) {
    // The interim (1xx) heads too, each before the final one, as curl -i shows them.
    const auto include = [&](const net::HTTPResponseHead& head) {
      std::string text =
          absl::StrCat("HTTP/1.", head.version_minor, " ", head.status, " ", head.reason, "\r\n");
      for (const auto& [name, value] : head.headers)
        absl::StrAppend(&text, name, ": ", value, "\r\n");
      text += "\r\n";
      after_write(standard_error().write(text, transfer_deadline), /*keep_error=*/false);
    };
    request.interim_callback = include;
    request.header_callback = include;
  }

  // Made whatever the URL's scheme: an http URL may redirect to https. An unreadable
  // --ca_file is a usage error (exit 2, naming the file).
  absl::StatusOr<std::shared_ptr<const net::TLSContext>> tls =
      ioloop::examples::client_tls_context(absl::GetFlag(FLAGS_ca_file), {"http/1.1"});
  if (!tls.ok()) return fail(tls.status().message());

  absl::StatusOr<std::unique_ptr<ioloop::IOLoop>> loop = ioloop::IOLoop::create();
  if (!loop.ok()) return fail(loop.status().message());
  (*loop)->make_current();

  int exit_code = kExitTransport;
  // Named in a timeout's line when the output ran out of time after the response had arrived.
  const std::string method = request.method;
  {
    net::HTTPClientOptions client_options;
    client_options.tls = *tls;
    net::HTTPClient client(**loop, client_options);
    const uint64_t id =
        client.fetch(std::move(request), [&](absl::StatusOr<net::HTTPClientResponse> response) {
          (*loop)->stop();
          if (!write_error.empty()) {
            exit_code = kExitTransport;  // said below
          } else if (timed_out) {
            // The cancellation's message names the request and where it was: " (GET URL,
            // connecting)". The response may also have completed before the cancellation ran.
            std::string where = response.ok()
                                    ? absl::StrCat(" (", method, " ", response->effective_url,
                                                   ", writing the body)")
                                    : std::string(response.status().message());
            where = where.substr(std::min(where.find(" ("), where.size()));
            exit_code = fail(absl::StrCat("timeout: the transfer took longer than ",
                                          absl::FormatDuration(timeout), where));
          } else if (!response.ok()) {
            exit_code = fail(response.status().message());
          } else if (absl::Status begun = out->begin(); !begun.ok()) {
            write_error = std::string(begun.message());  // a response without body: said below
          } else {
            exit_code = response->status < 400 ? kExitOk : kExitHTTPError;
          }
        });
    // Not from inside the streaming callback: cancel() completes the fetch, which is running.
    stop_transfer = [&] { (*loop)->add_callback([&] { client.cancel(id); }); };
    if (timeout > absl::ZeroDuration()) {
      transfer_deadline =
          ioloop::add_saturating(ioloop::Clock::now(), ioloop::to_clock_duration(timeout));
      (*loop)->call_later(timeout, [&] {
        timed_out = true;
        client.cancel(id);  // runs the callback above, with Cancelled
      });
    }
    (*loop)->start();
  }
  if (absl::Status closed = out->close(); write_error.empty() && !closed.ok()) {
    write_error = std::string(closed.message());
  }
  if (!write_error.empty()) exit_code = fail(absl::StrCat("cannot write the body: ", write_error));
  return exit_code;
}
