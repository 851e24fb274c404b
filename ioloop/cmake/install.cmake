# Installation: `cmake --install <build> [--prefix P]` puts the static libraries, the public
# headers, a CMake package (find_package(ioloop CONFIG)) and pkg-config files under the
# prefix. Included from the top-level CMakeLists.txt when IOLOOP_INSTALL is on (the default
# only when ioloop is the top-level project: a parent using add_subdirectory() does not
# install ioloop along with itself unless it asks for it).
#
# Layout (relative to the prefix; LIBDIR is GNUInstallDirs' CMAKE_INSTALL_LIBDIR):
#   include/ioloop/*.h, include/ioloop/net/{,http/,tls/,internal/}*.h   public headers only
#   LIBDIR/libioloop.a libioloop_net.a libioloop_http.a libioloop_tls.a
#   LIBDIR/cmake/ioloop/ioloopConfig.cmake, ioloopConfigVersion.cmake, ioloopTargets*.cmake
#   LIBDIR/pkgconfig/ioloop.pc (all), ioloop-core.pc, ioloop-net.pc, ioloop-http.pc,
#                    ioloop-tls.pc
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_ioloop_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ioloop)

# The exported targets' include directory is the one the headers go to (INCLUDES
# DESTINATION), whatever CMAKE_INSTALL_INCLUDEDIR says, as the .pc files' Cflags are.
install(TARGETS ioloop_ioloop ioloop_net ioloop_http ioloop_tls EXPORT ioloopTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Every header under the include/ directories is public (ioloop/net/internal/ too: io_stream.h
# includes it); the private ones live in src/ and are never installed.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/ioloop/include/ioloop
                  ${PROJECT_SOURCE_DIR}/net/include/ioloop
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(EXPORT ioloopTargets NAMESPACE ioloop:: DESTINATION ${_ioloop_cmake_dir})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/ioloopConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ioloopConfig.cmake INSTALL_DESTINATION ${_ioloop_cmake_dir})
# 0.x: a minor bump may break the API, so 0.1.y satisfies a request for 0.1 only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ioloopConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ioloopConfig.cmake
              ${PROJECT_BINARY_DIR}/ioloopConfigVersion.cmake
        DESTINATION ${_ioloop_cmake_dir})

# pkg-config: one file per library plus ioloop.pc for all of them. The libraries are static
# only, so what their archives need (libhttp_parser, OpenSSL, -pthread) is in Libs and Requires,
# not in the .private fields: those serve a shared library's static link, and plain
# `pkg-config --libs` (Meson's dependency(), autotools' PKG_CHECK_MODULES) leaves them out, so
# the link would fail. Dependencies the public headers use (abseil, spdlog) are in Requires too.
foreach(_ioloop_dir CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
  if(IS_ABSOLUTE "${${_ioloop_dir}}")
    message(FATAL_ERROR "ioloop: the pkg-config files need a relative ${_ioloop_dir}")
  endif()
endforeach()
file(RELATIVE_PATH IOLOOP_PC_PREFIX_FROM_PCDIR /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" IOLOOP_PC_PREFIX_FROM_PCDIR "${IOLOOP_PC_PREFIX_FROM_PCDIR}")

function(ioloop_write_pc name description)
  cmake_parse_arguments(PARSE_ARGV 2 IOLOOP_PC "" "" "LIBS;REQUIRES")
  set(IOLOOP_PC_NAME ${name})
  set(IOLOOP_PC_DESCRIPTION ${description})
  if(IOLOOP_PC_LIBS)
    set(IOLOOP_PC_LIBS "-L\${libdir};${IOLOOP_PC_LIBS}")
  endif()
  foreach(field LIBS REQUIRES)
    string(REPLACE ";" " " IOLOOP_PC_${field} "${IOLOOP_PC_${field}}")
  endforeach()
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/ioloop.pc.in
                 ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

# The same dependencies as the targets' target_link_libraries (ioloop/ and net/CMakeLists.txt).
ioloop_write_pc(ioloop-core "ioloop reactor (IOLoop, timers, signals)" LIBS -lioloop -pthread
  REQUIRES absl_any_invocable absl_status absl_statusor absl_synchronization absl_time
           absl_strings absl_str_format spdlog)
ioloop_write_pc(ioloop-net "ioloop streams, TCP server and client, resolver" LIBS -lioloop_net
  REQUIRES ioloop-core absl_flat_hash_map)
ioloop_write_pc(ioloop-http "ioloop HTTP/1.1 server and client" LIBS -lioloop_http -lhttp_parser
  REQUIRES ioloop-net)
ioloop_write_pc(ioloop-tls "ioloop TLS transport (OpenSSL 3)" LIBS -lioloop_tls
  REQUIRES ioloop-net "openssl >= 3.0")
ioloop_write_pc(ioloop "${PROJECT_DESCRIPTION}: every ioloop library"
  REQUIRES ioloop-http ioloop-tls)
