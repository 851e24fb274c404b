# ctest script (issue 9, "layers as libraries"): asserts from the build's own link commands that
# the programs in WITHOUT do not link libhttp_parser (nor ioloop::http) and that those in WITH
# do, so the check is shown to see the library when it is there. The link line, not the
# binary, is what is checked: the linker's --as-needed (Debian's default) would drop an unused
# libhttp_parser.so from the binary's NEEDED entries even if the build still passed it.
#   cmake -DNINJA=<ninja> -DBUILD_DIR=<dir> -DWITHOUT=a,b -DWITH=c,d -P check_link.cmake
# Ninja only: `ninja -t commands <target>` lists the commands that build a target, its own link
# command last.
foreach(var NINJA BUILD_DIR WITHOUT WITH)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_link.cmake: -D${var}=... is required")
  endif()
endforeach()
string(REPLACE "," ";" WITHOUT "${WITHOUT}")
string(REPLACE "," ";" WITH "${WITH}")

function(link_command target out)
  execute_process(COMMAND ${NINJA} -C ${BUILD_DIR} -t commands ${target}
                  OUTPUT_VARIABLE commands RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ninja -t commands ${target} failed (${rc}): ${err}")
  endif()
  string(STRIP "${commands}" commands)
  string(REGEX REPLACE "^.*\n" "" last "${commands}")  # the target's own (link) command
  set(${out} "${last}" PARENT_SCOPE)
endfunction()

set(failed FALSE)
foreach(target ${WITHOUT})
  link_command(${target} line)
  if(line MATCHES "http_parser|libioloop_http")
    message(SEND_ERROR "${target} links HTTP (${CMAKE_MATCH_0}): ${line}")
    set(failed TRUE)
  else()
    message(STATUS "${target}: no libhttp_parser, no libioloop_http")
  endif()
endforeach()
foreach(target ${WITH})
  link_command(${target} line)
  if(NOT line MATCHES "libhttp_parser" OR NOT line MATCHES "libioloop_http")
    message(SEND_ERROR "${target} should link libhttp_parser and libioloop_http: ${line}")
    set(failed TRUE)
  else()
    message(STATUS "${target}: links libhttp_parser and libioloop_http")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "check_link.cmake: see above")
endif()
