# The two commands README.md promises. Everything else is a CMake preset.
#   make run   install what is missing, build, run the echo server on port 5000
#   make test  install what is missing, build the default and asan presets, run every test,
#              then fuzz the HTTP request parser and connection for FUZZ_SECONDS
.PHONY: run test deps build build-asan http fuzz clean

PORT ?= 5000

deps:
	@bash third_party/install-deps.sh

build: deps
	cmake --preset default
	cmake --build --preset default

build-asan: deps
	cmake --preset asan
	cmake --build --preset asan

run: build
	./build/default/examples/echo_server --port $(PORT)

http: build
	./build/default/examples/http_responder --port 8080

# The fuzz stage is part of the test run (issue: 60 s on the HTTP parser and connection).
test: build build-asan
	ctest --preset default
	ctest --preset asan
	bash tests/fuzz/run_fuzzers.sh $(FUZZ_SECONDS)

# libFuzzer on the HTTP request parser (clang preset "fuzz"), FUZZ_SECONDS long.
FUZZ_SECONDS ?= 60
fuzz: deps
	bash tests/fuzz/run_fuzzers.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
