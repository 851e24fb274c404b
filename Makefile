# The two commands README.md promises. Everything else is a CMake preset.
#   make run   install what is missing, build, run the echo server on port 5000
#   make test  install what is missing, build the default, asan and tsan presets, run every
#              test in each, then run every libFuzzer target for FUZZ_SECONDS (30 s)
# Longer runs, not part of `make test`:
#   make fuzz      every fuzzer for FUZZ_SECONDS (default here 300 s)
#   make soak      load and soak runs against the real servers (tests/soak/)
#   make valgrind  memcheck over the unit tests
.PHONY: run test deps build build-asan build-tsan http fuzz soak valgrind clean

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
	bash tests/fuzz/run.sh 30

# libFuzzer on every target (clang preset "fuzz"), FUZZ_SECONDS each, two at a time.
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

clean:
	rm -rf build
