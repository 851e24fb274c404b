# ctest script (issue 9, "layers as libraries"): asserts from the build's own link commands that
# the programs in WITHOUT do not link libhttp_parser (nor ioloop::http) and that those in WITH
# do, so the check is shown to see the library when it is there; likewise for TLS, the
# programs in WITHOUT_TLS link neither OpenSSL (libssl, libcrypto) nor ioloop::tls and those
# in WITH_TLS link all three. The link line, not the binary, is what is checked: the linker's
# --as-needed (Debian's default) would drop an unused shared library from the binary's NEEDED
# entries even if the build still passed it.
#   cmake -DNINJA=<ninja> -DBUILD_DIR=<dir> -DWITHOUT=a,b -DWITH=c,d
#         -DWITHOUT_TLS=e,f -DWITH_TLS=g,h -P check_link.cmake
# Ninja only: `ninja -t commands <target>` lists the commands that build a target, its own link
# command last.
foreach(var NINJA BUILD_DIR WITHOUT WITH WITHOUT_TLS WITH_TLS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_link.cmake: -D${var}=... is required")
  endif()
endforeach()

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

# Each program in `targets` (comma-separated) links every one of `libs` if `want`, else
# none of them: each a regular expression matched against its link command, `what` naming
# them in messages.
set(failed FALSE)
function(check what targets want libs)
  string(REPLACE "," ";" targets "${targets}")
  foreach(target ${targets})
    link_command(${target} line)
    set(found "")
    set(missing "")
    foreach(lib ${libs})
      if(line MATCHES "${lib}")
        list(APPEND found "${CMAKE_MATCH_0}")
      else()
        list(APPEND missing "${lib}")
      endif()
    endforeach()
    if(want AND missing)
      message(SEND_ERROR "${target} should link ${what} (missing ${missing}): ${line}")
      set(failed TRUE PARENT_SCOPE)
    elseif(NOT want AND found)
      message(SEND_ERROR "${target} links ${what} (${found}): ${line}")
      set(failed TRUE PARENT_SCOPE)
    elseif(want)
      message(STATUS "${target}: links ${what}")
    else()
      message(STATUS "${target}: does not link ${what}")
    endif()
  endforeach()
endfunction()

set(http "(lib|-l)http_parser;libioloop_http")
set(tls "libssl[.]|-lssl;libcrypto[.]|-lcrypto;libioloop_tls")
check("HTTP (libhttp_parser, libioloop_http)" "${WITHOUT}" FALSE "${http}")
check("HTTP (libhttp_parser, libioloop_http)" "${WITH}" TRUE "${http}")
check("TLS (libssl, libcrypto, libioloop_tls)" "${WITHOUT_TLS}" FALSE "${tls}")
check("TLS (libssl, libcrypto, libioloop_tls)" "${WITH_TLS}" TRUE "${tls}")
if(failed)
  message(FATAL_ERROR "check_link.cmake: see above")
endif()
