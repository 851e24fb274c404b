# CPack pre-build script (ioloop/cmake/packaging.cmake, CPACK_PRE_BUILD_SCRIPTS): strips the
# debug information from the staged static archives, as Debian's dh_strip does for a -dev
# package (the symbol tables stay: the archives still link). RelWithDebInfo archives are
# about 68 MB with it and 3.5 MB without. `cmake --install` is not affected.
file(GLOB_RECURSE _ioloop_archives "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*.a")
if(NOT _ioloop_archives)
  message(FATAL_ERROR "strip_archives: no .a under ${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
endif()
foreach(archive IN LISTS _ioloop_archives)
  execute_process(COMMAND "${CPACK_IOLOOP_STRIP}" --strip-debug "${archive}"
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "strip_archives: ${CPACK_IOLOOP_STRIP} --strip-debug ${archive}: ${status}")
  endif()
endforeach()
