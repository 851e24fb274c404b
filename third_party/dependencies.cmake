# Finds every external dependency. Each is a Debian package installed by
# third_party/install-deps.sh; a missing one stops configuration with a message that names
# the package, instead of a cryptic compiler error later.

set(_ioloop_deps_hint "run third_party/install-deps.sh (or: make deps)")

macro(ioloop_require_package name debian_package)
  find_package(${name} CONFIG QUIET ${ARGN})
  if(NOT ${name}_FOUND)
    find_package(${name} QUIET ${ARGN})
  endif()
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "ioloop: dependency '${name}' not found. Install the Debian package "
      "'${debian_package}': ${_ioloop_deps_hint}")
  endif()
endmacro()

ioloop_require_package(absl libabsl-dev)
ioloop_require_package(fmt libfmt-dev)
ioloop_require_package(spdlog libspdlog-dev)
find_package(Threads REQUIRED)
# OpenSSL 3 (ioloop::tls). FindOpenSSL ships with CMake; Debian's libssl-dev has no config.
find_package(OpenSSL 3.0 QUIET)
if(NOT OpenSSL_FOUND)
  message(FATAL_ERROR
    "ioloop: OpenSSL 3.0 or newer not found. Install the Debian package 'libssl-dev': "
    "${_ioloop_deps_hint}")
endif()

if(IOLOOP_BUILD_TESTS)
  ioloop_require_package(GTest "libgtest-dev and libgmock-dev")
  if(NOT TARGET GTest::gmock)
    message(FATAL_ERROR "ioloop: GoogleMock not found. Install 'libgmock-dev': ${_ioloop_deps_hint}")
  endif()
endif()

if(IOLOOP_BUILD_BENCHMARKS)
  ioloop_require_package(benchmark libbenchmark-dev)
endif()

# Debian's libhttp-parser-dev ships no CMake or pkg-config file: find header and library.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(HTTP_PARSER_LIBRARY NAMES http_parser)
if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
  message(FATAL_ERROR
    "ioloop: http_parser.h / libhttp_parser not found. Install the Debian package "
    "'libhttp-parser-dev': ${_ioloop_deps_hint}")
endif()
if(NOT TARGET http_parser::http_parser)
  add_library(http_parser::http_parser UNKNOWN IMPORTED)
  set_target_properties(http_parser::http_parser PROPERTIES
    IMPORTED_LOCATION "${HTTP_PARSER_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HTTP_PARSER_INCLUDE_DIR}")
endif()
