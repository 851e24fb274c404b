# The Debian package libioloop-dev (CPack's DEB generator): what `cmake --install` installs
# (ioloop/cmake/install.cmake), under /usr. Included only when ioloop is the top-level project:
# a parent's CPack settings are its own.
#
#   cmake --build build/default                  # the libraries must be built first
#   (cd build/default && cpack -G DEB)           # or: cmake --build build/default --target package
#   -> build/default/libioloop-dev_<version>_<arch>.deb
#
# CPack's DEB generator writes the archive itself: it needs dpkg (for the architecture) and
# nothing from dpkg-dev. tests/consumer/check_deb.sh checks the result and builds against it.
set(IOLOOP_DEB_MAINTAINER "ioloop maintainers <maintainers@users.noreply.h-seed-07cd5334.example>"
    CACHE STRING "Maintainer field of the libioloop-dev package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libioloop-dev)
set(CPACK_PACKAGE_VENDOR ioloop)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION} (development files)")
# The extended description: dpkg shows it as is, so lines stay under 80 columns.
set(CPACK_PACKAGE_DESCRIPTION
    "ioloop is a C++20 callback-driven network library in the style of
Tornado's IOLoop: an event loop on epoll, poll or select, buffered
streams, TCP server and client, an HTTP/1.1 server and client with a
keep-alive pool, and TLS through OpenSSL 3.
This package holds the static libraries, the headers, the CMake package
(find_package(ioloop CONFIG)) and the pkg-config files (ioloop,
ioloop-core, ioloop-net, ioloop-http, ioloop-tls).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The archives lose their debug information, not their symbols (strip_archives.cmake).
if(IOLOOP_DEB_STRIP_DEBUG AND CMAKE_STRIP)
  set(CPACK_IOLOOP_STRIP "${CMAKE_STRIP}")
  set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/strip_archives.cmake)
endif()

set(CPACK_DEBIAN_PACKAGE_NAME libioloop-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # libioloop-dev_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${IOLOOP_DEB_MAINTAINER}")
# The -dev packages of what the headers include and what the archives link (the same list as
# third_party/install-deps.sh). abseil is pinned to the release built against, from both
# sides: its symbols carry the release in their inline namespace (Debian's: absl::debian3,
# changed with each release), so no other release links these archives. Debian's versions
# of that release are ${absl_VERSION}.N-R.
set(_ioloop_absl_dep libabsl-dev)
string(REGEX MATCH "^[0-9]+" _ioloop_absl_release "${absl_VERSION}")  # 20220623 of 20220623.1
if(_ioloop_absl_release)
  math(EXPR _ioloop_absl_next "${_ioloop_absl_release} + 1")
  set(_ioloop_absl_dep
      "libabsl-dev (>= ${_ioloop_absl_release}), libabsl-dev (<< ${_ioloop_absl_next})")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "${_ioloop_absl_dep}, libfmt-dev, libspdlog-dev, libssl-dev (>= 3.0), libhttp-parser-dev")
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/\\\\.git$" "/build/")  # a worktree's .git is a file

include(CPack)
