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

# The programs in `without` (comma-separated) link none of `libs`, those in `with` every one:
# each a regular expression matched against the link command, `what` naming them in messages.
set(failed FALSE)
function(check what without with libs)
  string(REPLACE "," ";" without "${without}")
  string(REPLACE "," ";" with "${with}")
  foreach(target ${without})
    link_command(${target} line)
    set(found "")
    foreach(lib ${libs})
      if(line MATCHES "${lib}")
        list(APPEND found "${CMAKE_MATCH_0}")
      endif()
    endforeach()
    if(found)
      message(SEND_ERROR "${target} links ${what} (${found}): ${line}")
      set(failed TRUE PARENT_SCOPE)
    else()
      message(STATUS "${target}: does not link ${what}")
    endif()
  endforeach()
  foreach(target ${with})
    link_command(${target} line)
    set(missing "")
    foreach(lib ${libs})
      if(NOT line MATCHES "${lib}")
        list(APPEND missing "${lib}")
      endif()
    endforeach()
    if(missing)
      message(SEND_ERROR "${target} should link ${what} (missing ${missing}): ${line}")
      set(failed TRUE PARENT_SCOPE)
    else()
      message(STATUS "${target}: links ${what}")
    endif()
  endforeach()
endfunction()

check("HTTP (libhttp_parser, libioloop_http)" "${WITHOUT}" "${WITH}"
      "(lib|-l)http_parser;libioloop_http")
check("TLS (libssl, libcrypto, libioloop_tls)" "${WITHOUT_TLS}" "${WITH_TLS}"
      "libssl[.]|-lssl;libcrypto[.]|-lcrypto;libioloop_tls")
if(failed)
  message(FATAL_ERROR "check_link.cmake: see above")
endif()
