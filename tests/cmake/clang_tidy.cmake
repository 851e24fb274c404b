# clang-tidy over the library sources (IOLOOP_CLANG_TIDY, on in the asan preset): a ctest test
# per library, clang_tidy_<lib>, failing on any finding (.clang-tidy's WarningsAsErrors).
#
# Each test checks one translation unit that #includes every source of its library (a "unity"
# file written here), not each source on its own. clang-tidy 14 matches its checks over the
# whole AST, system headers included: a library source cost about 10 s on this project's 2-core
# machine (the headers, parsed and matched again for each of the 49 sources, about 4 minutes of
# `make test`), where a library's unity file costs 20 to 30 s. What that loses: the two checks
# that look at the main file only (misc-unused-using-decls, misc-unused-alias-decls) see none of
# the sources; every other finding in a source is reported at its line in that source, which
# .clang-tidy's HeaderFilterRegex covers. A library's sources must therefore also compile as one
# file (no two defining one internal name); the default and tsan presets still build each
# source on its own, so a missing #include is caught there.
#
# The test reads the unity file's compile command (the library's flags: includes, definitions,
# warnings, sanitizers) from compile_commands.json, where an object library that is never built
# puts it. `run-clang-tidy -p build/asan 'ioloop/src|net/src'` remains the complete per-source
# run, the static analyzer (clang-analyzer-*, off here for time) included.
if(NOT IOLOOP_CLANG_TIDY)
  return()
endif()
find_program(IOLOOP_CLANG_TIDY_EXE NAMES clang-tidy clang-tidy-14 REQUIRED)

get_property(tidy_libraries GLOBAL PROPERTY IOLOOP_LIBRARIES)
foreach(lib ${tidy_libraries})
  get_property(sources GLOBAL PROPERTY IOLOOP_LIBRARY_SOURCES_${lib})
  set(unity ${CMAKE_CURRENT_BINARY_DIR}/clang_tidy/${lib}.cc)
  set(content "// Written by tests/cmake/clang_tidy.cmake: every source of ioloop::${lib}.\n")
  foreach(src ${sources})
    string(APPEND content "#include \"${src}\"  // NOLINT(bugprone-suspicious-include)\n")
  endforeach()
  file(CONFIGURE OUTPUT ${unity} CONTENT "${content}" @ONLY)

  set(target ioloop_${lib}_clang_tidy)
  add_library(${target} OBJECT EXCLUDE_FROM_ALL ${unity})
  target_include_directories(${target} PRIVATE
    $<TARGET_PROPERTY:ioloop_${lib},INCLUDE_DIRECTORIES>)
  target_compile_definitions(${target} PRIVATE
    $<TARGET_PROPERTY:ioloop_${lib},COMPILE_DEFINITIONS>)
  target_compile_options(${target} PRIVATE $<TARGET_PROPERTY:ioloop_${lib},COMPILE_OPTIONS>)
  target_compile_features(${target} PRIVATE cxx_std_20)

  add_test(NAME clang_tidy_${lib}
           COMMAND ${IOLOOP_CLANG_TIDY_EXE} --quiet --checks=-clang-analyzer-*
                   --config-file=${PROJECT_SOURCE_DIR}/.clang-tidy -p ${PROJECT_BINARY_DIR}
                   ${unity})
  set_tests_properties(clang_tidy_${lib} PROPERTIES TIMEOUT 240 LABELS tooling)
endforeach()
