# The API reference (issue 11): docs/Doxyfile over the public headers must build without a
# Doxygen warning, so a public declaration without a /// comment (or a malformed one) fails
# `make test`. Included from tests/CMakeLists.txt.
#   doxygen_warnings                       the real headers and README.md: no warning
#   doxygen_warnings_detects_undocumented  the same check on tests/cmake/doxygen_fixture.h,
#                                          which has one undocumented function: the check must
#                                          fail and print that warning
# Comments do not depend on the build flags, so the tests are registered in the default preset
# only (not in asan/tsan, which would run them again for nothing; the release preset
# builds no tests). Together they take about 2 s.
if(IOLOOP_BUILD_TESTS AND NOT IOLOOP_SANITIZED)
  # Installed by third_party/install-deps.sh; when missing the tests fail saying so.
  find_program(IOLOOP_DOXYGEN doxygen)
  set(check ${CMAKE_COMMAND} -DDOXYGEN=${IOLOOP_DOXYGEN} -DSOURCE_DIR=${PROJECT_SOURCE_DIR})

  add_test(NAME doxygen_warnings
           COMMAND ${check} -DOUTPUT_DIR=${CMAKE_CURRENT_BINARY_DIR}/doxygen
                   -P ${CMAKE_CURRENT_LIST_DIR}/check_doxygen.cmake)
  set_tests_properties(doxygen_warnings PROPERTIES TIMEOUT 120)

  # Only the fixture as input, without the README main page and its filter.
  set(fixture_settings
      "INPUT = tests/cmake/doxygen_fixture.h|USE_MDFILE_AS_MAINPAGE =|FILTER_PATTERNS =")
  add_test(NAME doxygen_warnings_detects_undocumented
           COMMAND ${check} -DOUTPUT_DIR=${CMAKE_CURRENT_BINARY_DIR}/doxygen_fixture
                   "-DEXTRA=${fixture_settings}"
                   -P ${CMAKE_CURRENT_LIST_DIR}/check_doxygen.cmake)
  # Passes only if the check printed the fixture's warning and its failure line (a check that
  # ignored warnings, or a Doxyfile that stopped warning about undocumented members, would
  # print neither).
  set_tests_properties(doxygen_warnings_detects_undocumented PROPERTIES TIMEOUT 120
    PASS_REGULAR_EXPRESSION
    "doxygen_fixture.h:[0-9]+: warning: Member undocumented_on_purpose\\(\\) \\(function\\) of namespace fixture is not documented.*reported [0-9]+ warning line")
endif()
