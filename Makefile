# The two commands README.md promises. Everything else is a CMake preset.
#   make run   install what is missing, build, run the echo server on port 5000
#   make test  install what is missing, build the default, asan and tsan presets, run every
#              test in each (the default preset's include the tooling checks: format, links,
#              examples' --help, thread-safety; the asan preset's, clang-tidy on the library;
#              that preset also builds the fuzzers), then run every libFuzzer target for 30 s
#              with a fixed seed (a failure prints its input to replay; `make fuzz` explores)
# Longer runs, not part of `make test`:
#   make fuzz      every fuzzer for FUZZ_SECONDS (default here 300 s)
#   make soak      load and soak runs against the real servers (tests/soak/)
#   make valgrind  memcheck over the unit tests
#   make compare   ioloop's examples against a C epoll floor, libevent, libuv, Asio, nginx, Tornado
#   make docs      the API reference (Doxygen): build/docs/html/index.html
.PHONY: run test deps build build-asan build-tsan http fuzz soak valgrind compare docs clean

PORT ?= 5000

deps:
	@bash third_party/install-deps.sh

build: deps
	cmake --preset default
	cmake --build --preset default

build-asan: deps
	cmake --preset asan
	cmake --build --preset asan

build-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan

run: build
	./build/default/examples/echo_server --port $(PORT)

http: build
	./build/default/examples/http_responder --port 8080

test: build build-asan build-tsan
	ctest --preset default
	ctest --preset asan
	ctest --preset tsan
	bash tests/load/compare/smoke.sh
	FUZZ_SEED=1 bash tests/fuzz/run.sh 30

# libFuzzer on every target (built by the clang preset "asan"), FUZZ_SECONDS each, two at a time.
FUZZ_SECONDS ?= 300
fuzz: deps
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Load and soak runs against the real servers, loopback only (tests/soak/run.sh says what each
# stage checks; every duration and count is a SOAK_* variable, e.g. SOAK_WRK_SECONDS=30 for a
# short run). Summary table in build/soak/summary.md; non-zero exit if any stage failed.
soak: build
	@bash third_party/install-deps.sh --soak
	bash tests/soak/run.sh build/soak/summary.md

# valgrind memcheck over the default preset's unit tests (tests/valgrind/run.sh says what it skips).
valgrind: build
	@bash third_party/install-deps.sh --valgrind
	bash tests/valgrind/run.sh

# Issue 10's comparison (tests/load/compare/run.sh says what it measures; ROUNDS and DURATION
# shorten it, e.g. `make compare ROUNDS=1 DURATION=2`). Release build, as the figures are for
# the docs; report in build/compare/compare.md, charts next to it (COMPARE_CHART_DIR=docs/img
# for the docs). With the defaults about 9.5 minutes of measuring plus the release build.
ROUNDS ?= 3
DURATION ?= 3
COMPARE_CHART_DIR ?= build/compare
compare: deps
	@bash third_party/install-deps.sh --compare
	cmake --preset release
	cmake --build --preset release --target http_responder echo_server
	mkdir -p build/compare "$(COMPARE_CHART_DIR)"
	ROUNDS=$(ROUNDS) DURATION=$(DURATION) CHART_DIR=$(COMPARE_CHART_DIR) \
	  bash tests/load/compare/run.sh build/compare/compare.md

# The API reference from the public headers' /// comments, README.md its front page
# (docs/Doxyfile). Needs no build. Warnings are printed here; in `make test` the ctest
# doxygen_warnings fails on any (tests/cmake/doxygen.cmake).
docs: deps
	mkdir -p build/docs
	doxygen docs/Doxyfile
	@echo "API reference: build/docs/html/index.html"

clean:
	rm -rf build
