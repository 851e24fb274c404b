/// @file doxygen_fixture.h
/// Input of the ctest doxygen_warnings_detects_undocumented (tests/cmake/doxygen.cmake): one
/// documented and one undocumented declaration, so that the check is seen to fail and to print
/// the warning. Never compiled.
#ifndef IOLOOP_TESTS_CMAKE_DOXYGEN_FIXTURE_H_
#define IOLOOP_TESTS_CMAKE_DOXYGEN_FIXTURE_H_

/// A namespace for the fixture's declarations.
namespace fixture {

/// Documented: no warning.
int documented();

int undocumented_on_purpose();

}  // namespace fixture

#endif  // IOLOOP_TESTS_CMAKE_DOXYGEN_FIXTURE_H_
