# Packaging of the installed tree for hosts (issue 9, item 8), included at the end of the top-level
# CMakeLists.txt once rsoil_core (and, with a Fortran compiler, rsoil_couple_f) exist:
#   rsoil_couple/lib/cmake/rsoil_couple/rsoil_couple{Config,ConfigVersion,Targets*}.cmake
#       find_package(rsoil_couple CONFIG) -> rsoil_couple::rsoil_core, rsoil_couple::rsoil_couple_f
#   rsoil_couple/lib/pkgconfig/rsoil_couple.pc, rsoil_couple_f.pc   (relocatable through ${pcfiledir})
# and the CTests that consume them from an installed, then moved, prefix (fortran_shim/tests/package_checks.py).
include(CMakePackageConfigHelpers)
set(RSOIL_INSTALL_CMAKEDIR "${RSOIL_INSTALL_LIBDIR}/cmake/rsoil_couple")
set(RSOIL_INSTALL_PKGCONFIGDIR "${RSOIL_INSTALL_LIBDIR}/pkgconfig")
set(_rsc_pkg "${CMAKE_CURRENT_BINARY_DIR}/packaging")

install(EXPORT rsoil_coupleTargets
  NAMESPACE rsoil_couple::
  DESTINATION "${RSOIL_INSTALL_CMAKEDIR}"
  FILE rsoil_coupleTargets.cmake)
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/rsoil_coupleConfig.cmake.in"
  "${_rsc_pkg}/rsoil_coupleConfig.cmake"
  INSTALL_DESTINATION "${RSOIL_INSTALL_CMAKEDIR}"
  PATH_VARS RSOIL_INSTALL_INCLUDEDIR RSOIL_INSTALL_LIBDIR)
# 0.x: a minor release may change the C ABI or the .mod file; accept the same major.minor only
write_basic_package_version_file("${_rsc_pkg}/rsoil_coupleConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${_rsc_pkg}/rsoil_coupleConfig.cmake" "${_rsc_pkg}/rsoil_coupleConfigVersion.cmake"
  DESTINATION "${RSOIL_INSTALL_CMAKEDIR}")

configure_file("${CMAKE_CURRENT_LIST_DIR}/rsoil_couple.pc.in" "${_rsc_pkg}/rsoil_couple.pc" @ONLY)
install(FILES "${_rsc_pkg}/rsoil_couple.pc" DESTINATION "${RSOIL_INSTALL_PKGCONFIGDIR}")
if(TARGET rsoil_couple_f)
  configure_file("${CMAKE_CURRENT_LIST_DIR}/rsoil_couple_f.pc.in" "${_rsc_pkg}/rsoil_couple_f.pc" @ONLY)
  install(FILES "${_rsc_pkg}/rsoil_couple_f.pc" DESTINATION "${RSOIL_INSTALL_PKGCONFIGDIR}")
endif()

# ---- tests: install into a temporary prefix, move it (relocation), build fortran_shim/examples ----
if(TARGET rsoil_couple_f)
  set(_rsc_checks "${RSOIL_PYTHON}" "${PROJECT_SOURCE_DIR}/fortran_shim/tests/package_checks.py")
  set(_rsc_args --work "${CMAKE_CURRENT_BINARY_DIR}/package_tests" --build-dir "${CMAKE_BINARY_DIR}"
      --source-dir "${PROJECT_SOURCE_DIR}" --cmake "${CMAKE_COMMAND}" --fc "${CMAKE_Fortran_COMPILER}"
      --model "${RSOIL_TEST_MODEL}")
  add_test(NAME package_install COMMAND ${_rsc_checks} install ${_rsc_args})
  set_tests_properties(package_install PROPERTIES FIXTURES_SETUP rsoil_package TIMEOUT 300)
  add_test(NAME package_cmake_consumer COMMAND ${_rsc_checks} cmake ${_rsc_args})
  set_tests_properties(package_cmake_consumer PROPERTIES
    FIXTURES_REQUIRED "rsoil_package;rsoil_test_model" TIMEOUT 300)
  find_program(RSOIL_PKG_CONFIG NAMES pkg-config pkgconf)
  if(RSOIL_PKG_CONFIG)
    add_test(NAME package_pkgconfig_consumer
             COMMAND ${_rsc_checks} pkgconfig ${_rsc_args} --pkg-config "${RSOIL_PKG_CONFIG}")
    set_tests_properties(package_pkgconfig_consumer PROPERTIES
      FIXTURES_REQUIRED "rsoil_package;rsoil_test_model" TIMEOUT 300)
  else()
    message(STATUS "pkg-config not found: the test package_pkgconfig_consumer is not added")
  endif()
endif()
