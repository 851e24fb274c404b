// File: tests/bench/http_parser_benchmark.cc
// Cost of RequestParser per request: one request per feed() (a keep-alive client such as
// `ab -k` or curl) and 16 pipelined requests per feed() (wrk with a pipelining script).
// The "per_request" counter (seconds, e.g. "95.2n") is the number to compare; the parser and its
// result vector are reused across iterations, as a connection reuses them.
#include <string>

#include "benchmark/benchmark.h"
#include "ioloop/net/http/request_parser.h"

namespace {

using ioloop::net::RequestParser;

// What curl 7.88 sends for `curl http://127.0.0.1:8080/`.
const char kCurlRequest[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

// A browser-like request: more and longer headers.
const char kBrowserRequest[] =
    "GET /index.html?q=search&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Cookie: session=0123456789abcdef; theme=dark\r\n\r\n";

void parse_loop(benchmark::State& state, const std::string& input, int requests_per_feed) {
  RequestParser parser;
  RequestParser::Result result;
  for (auto _ : state) {
    result.requests.clear();
    parser.feed(input, result);
    if (result.requests.size() != static_cast<size_t>(requests_per_feed) || result.error) {
      state.SkipWithError("unexpected parse result");
      break;
    }
    benchmark::DoNotOptimize(result.requests.data());
  }
  state.SetItemsProcessed(state.iterations() * requests_per_feed);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.size()));
  // Seconds per request, printed with an SI suffix: "95.2n" is 95.2 ns per request.
  state.counters["per_request"] =
      benchmark::Counter(static_cast<double>(state.iterations() * requests_per_feed),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ParseSingle(benchmark::State& state, const char* request) { parse_loop(state, request, 1); }

void BM_ParsePipelined16(benchmark::State& state, const char* request) {
  std::string input;
  for (int i = 0; i < 16; ++i) input += request;
  parse_loop(state, input, 16);
}

BENCHMARK_CAPTURE(BM_ParseSingle, curl, kCurlRequest);
BENCHMARK_CAPTURE(BM_ParsePipelined16, curl, kCurlRequest);
BENCHMARK_CAPTURE(BM_ParseSingle, browser, kBrowserRequest);
BENCHMARK_CAPTURE(BM_ParsePipelined16, browser, kBrowserRequest);

}  // namespace

BENCHMARK_MAIN();
