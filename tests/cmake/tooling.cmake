# Tooling checks (issue 11): formatting, lock annotations, the examples' --help and the docs'
# links. Included at the end of tests/CMakeLists.txt. None of them depends on a sanitizer, so
# they are registered in the default preset only (a build whose CMAKE_CXX_FLAGS name no
# -fsanitize, with the tests on): the asan and tsan presets would run them again for nothing.
# clang-tidy is not here: it is a test of the asan preset (tests/cmake/clang_tidy.cmake), whose
# compile commands are clang's.
if(NOT IOLOOP_BUILD_TESTS OR IOLOOP_SANITIZED)
  return()
endif()

set(tooling_dir ${CMAKE_CURRENT_SOURCE_DIR}/tooling)

# Every tracked *.cc, *.h, *.c under ioloop/, net/, examples/, tests/ is as clang-format
# (.clang-format) leaves it. Debian 12's clang-format is 14, installed by install-deps.sh.
find_program(IOLOOP_CLANG_FORMAT NAMES clang-format clang-format-14)
if(IOLOOP_CLANG_FORMAT)
  add_test(NAME clang_format_check
           COMMAND bash ${tooling_dir}/check_format.sh ${PROJECT_SOURCE_DIR} ${IOLOOP_CLANG_FORMAT})
  set_tests_properties(clang_format_check PROPERTIES TIMEOUT 120 LABELS tooling)
else()
  message(WARNING "ioloop: clang-format not found; clang_format_check not registered "
                  "(third_party/install-deps.sh installs it)")
endif()

# The thread-safety check rejects a violation: a snippet reading an ABSL_GUARDED_BY member
# without its lock fails to compile with clang++ and the library's flags (and compiles with the
# lock). The positive side, the library itself, is the asan preset's clang build.
find_program(IOLOOP_CLANGXX NAMES clang++ clang++-14)
if(IOLOOP_CLANGXX)
  add_test(NAME thread_safety_check
           COMMAND bash ${tooling_dir}/check_thread_safety.sh ${IOLOOP_CLANGXX}
                   ${PROJECT_SOURCE_DIR} ${IOLOOP_CLANG_THREAD_SAFETY_FLAGS})
  set_tests_properties(thread_safety_check PROPERTIES TIMEOUT 120 LABELS tooling)
else()
  message(WARNING "ioloop: clang++ not found; thread_safety_check not registered")
endif()

# Each example's --help documents every flag its source defines (and only those), and
# --log_level=bogus fails at once with a message naming the level. The names come from
# examples/*.cc, as examples/CMakeLists.txt builds each one, so a new example is checked too.
if(IOLOOP_BUILD_EXAMPLES)
  file(GLOB tooling_examples CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/examples/*.cc)
  foreach(src ${tooling_examples})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME ${name}_help_check
             COMMAND bash ${tooling_dir}/check_example_help.sh $<TARGET_FILE:${name}> ${src})
    set_tests_properties(${name}_help_check PROPERTIES TIMEOUT 90 LABELS tooling)
  endforeach()
endif()

# Relative links and #anchors in README.md and docs/*.md resolve.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME docs_link_check
           COMMAND ${Python3_EXECUTABLE} ${tooling_dir}/check_links.py ${PROJECT_SOURCE_DIR})
  set_tests_properties(docs_link_check PROPERTIES TIMEOUT 60 LABELS tooling)
endif()
