# Packaging tests (issue 11), in the default preset only: they check what is installed, not
# the code, so the sanitizer presets would repeat them for nothing. Each runs a script that
# installs (or packages) this build tree's already-built libraries into build/<preset>/
# packaging/, then builds tests/consumer/ against the result with CMake and with pkg-config
# and runs its two round-trip programs (tests/consumer/lib.sh says what each step checks).
#   package_consumer_install   cmake --install --prefix, then the consumer
#   package_consumer_deb       cpack -G DEB, dpkg-deb -I/-c checks, dpkg -x, then the consumer
#   package_export_settings    configures only: the exported include directory, and a parent
#                              project's CPack settings (tests/consumer/check_export.sh)
# They need `all` built first (as ctest after `make build` does), and no network. The work
# directory is removed when the test passes (it holds about 150 MB) and kept when it fails.
if(IOLOOP_INSTALL AND CMAKE_BUILD_TYPE STREQUAL "RelWithDebInfo"
   AND NOT IOLOOP_SANITIZED)
  include(GNUInstallDirs)
  foreach(kind install deb)
    add_test(NAME package_consumer_${kind}
             COMMAND ${CMAKE_COMMAND} -E env CMAKE=${CMAKE_COMMAND} CPACK=${CMAKE_CPACK_COMMAND}
                     DEB_STRIPPED=$<BOOL:${IOLOOP_DEB_STRIP_DEBUG}>
                     bash ${CMAKE_CURRENT_SOURCE_DIR}/consumer/check_${kind}.sh
                     ${PROJECT_BINARY_DIR} ${PROJECT_BINARY_DIR}/packaging/${kind}
                     ${CMAKE_INSTALL_LIBDIR} ${PROJECT_VERSION})
    set_tests_properties(package_consumer_${kind} PROPERTIES TIMEOUT 300 LABELS packaging)
  endforeach()
  add_test(NAME package_export_settings
           COMMAND ${CMAKE_COMMAND} -E env CMAKE=${CMAKE_COMMAND}
                   bash ${CMAKE_CURRENT_SOURCE_DIR}/consumer/check_export.sh ${PROJECT_SOURCE_DIR}
                   ${PROJECT_BINARY_DIR}/packaging/export)
  set_tests_properties(package_export_settings PROPERTIES TIMEOUT 300 LABELS packaging)
endif()
