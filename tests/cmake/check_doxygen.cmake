# ctest script (issue 11): builds the API reference of docs/Doxyfile into OUTPUT_DIR and fails,
# printing every warning, if Doxygen reports any: a public declaration without a /// comment,
# a malformed command, an unresolved reference in README.md. The settings are docs/Doxyfile's
# (so `make docs` and this test see the same warnings); only the output and the warning log
# move into the build tree. EXTRA (optional, "|"-separated "TAG = value" lines: a ";" would
# split the ctest argument) overrides more settings: the self-test points INPUT at
# tests/cmake/doxygen_fixture.h with it.
#   cmake -DDOXYGEN=<doxygen> -DSOURCE_DIR=<repo> -DOUTPUT_DIR=<dir> [-DEXTRA=...]
#         -P check_doxygen.cmake
foreach(var DOXYGEN SOURCE_DIR OUTPUT_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_doxygen.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DOXYGEN OR NOT EXISTS "${DOXYGEN}")
  message(FATAL_ERROR "doxygen not found (Debian package doxygen): run "
                      "bash third_party/install-deps.sh, then configure again")
endif()

file(REMOVE_RECURSE "${OUTPUT_DIR}")
file(MAKE_DIRECTORY "${OUTPUT_DIR}")
set(log "${OUTPUT_DIR}/warnings.log")
# Paths in docs/Doxyfile are relative to the repository root, where Doxygen runs.
set(config "@INCLUDE = ${SOURCE_DIR}/docs/Doxyfile\n")
string(APPEND config "OUTPUT_DIRECTORY = \"${OUTPUT_DIR}\"\n")
string(APPEND config "WARN_LOGFILE = \"${log}\"\n")
string(REPLACE "|" ";" extra "${EXTRA}")
foreach(line IN LISTS extra)
  string(APPEND config "${line}\n")
endforeach()
file(WRITE "${OUTPUT_DIR}/Doxyfile" "${config}")

execute_process(COMMAND "${DOXYGEN}" "${OUTPUT_DIR}/Doxyfile"
                WORKING_DIRECTORY "${SOURCE_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
# Warnings about the configuration itself (an obsolete or unknown tag) come before the log
# file is open, on the console: they count too.
set(warnings "${out}${err}")
if(EXISTS "${log}")
  file(READ "${log}" logged)
  string(APPEND warnings "${logged}")
endif()
string(STRIP "${warnings}" warnings)
if(NOT rc EQUAL 0 OR NOT warnings STREQUAL "")
  string(REGEX MATCHALL "[^\n]*(warning|error):" lines "${warnings}")
  list(LENGTH lines count)
  string(REPLACE "${SOURCE_DIR}/" "" warnings "${warnings}")
  # Unformatted (message() without a mode), one warning a line; FATAL_ERROR would re-wrap them.
  message("${warnings}")
  message(FATAL_ERROR "doxygen (exit ${rc}) reported ${count} warning line(s), above: document "
                      "the declaration (/// before it, ///< after a member) or fix the comment")
endif()
message(STATUS "doxygen: no warnings; reference in ${OUTPUT_DIR}/html/index.html")
