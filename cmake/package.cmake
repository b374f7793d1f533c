# cmake/package.cmake: what `cmake --install` installs, and the Debian package made of exactly
# that (CPack DEB). These install rules are the only description of the layout:
#   bin/sfirun                                    the host
#   share/sfirun/{scripts,vendor,recipes}         the Lua library, device packs, recipes
#   lib/udev/rules.d/70-sfirun-stlink.rules       ST-LINK access (udev/)
#   share/man/man1/sfirun.1.gz                    generated from sfirun's --help (gendoc.lua)
#   share/bash-completion/completions/sfirun      generated likewise
#   share/doc/sfirun/                             docs, README.Debian, copyright, changelog,
#                                                 examples/
# `packaging/build-deb.sh` (the `package` preset, Debian's build flags) makes the .deb.
include(GNUInstallDirs)

option(SFI_PACKAGE "Build for a package: the host has no fallback to the source tree" OFF)

# A package build leaves SFI_SOURCE_DIR out of the host (cli/sfirun.c: find_root), so the
# shipped binary holds no build path and never reads a source tree.
if(SFI_PACKAGE)
  get_target_property(_sfi_defs sfirun COMPILE_DEFINITIONS)
  list(FILTER _sfi_defs EXCLUDE REGEX "^SFI_(SOURCE_DIR|DATADIR)=")
  set_property(TARGET sfirun PROPERTY COMPILE_DEFINITIONS "${_sfi_defs}")
endif()

# packaging/changelog's first entry is the package version: it must be project(VERSION).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/packaging/changelog)
file(STRINGS ${CMAKE_SOURCE_DIR}/packaging/changelog _sfi_cl LIMIT_COUNT 1)
string(REGEX MATCH "^sfirun \\(([^)]*)\\)" _sfi_m "${_sfi_cl}")
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  set(_sfi_msg "packaging/changelog's first entry is version '${CMAKE_MATCH_1}' but "
    "project(VERSION) is ${PROJECT_VERSION}: add a changelog entry for ${PROJECT_VERSION}")
  if(SFI_PACKAGE)
    message(FATAL_ERROR ${_sfi_msg})
  else()
    message(WARNING ${_sfi_msg})
  endif()
endif()

set(SFI_DATADIR_REL ${CMAKE_INSTALL_DATADIR}/sfirun)
set(SFI_DOCDIR_REL ${CMAKE_INSTALL_DATADIR}/doc/sfirun)

# ---- generated: man page, bash completion, copyright, compressed changelog -------------------
find_program(SFI_LUA NAMES lua5.4 REQUIRED)
set(_sfi_gen ${CMAKE_BINARY_DIR}/packaging)
file(GLOB _sfi_cli_lua CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/scripts/sfi/cli/*.lua)
add_custom_command(
  OUTPUT ${_sfi_gen}/sfirun.1.gz ${_sfi_gen}/sfirun.bash-completion
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_sfi_gen}
  COMMAND ${CMAKE_COMMAND} -E env SFI_SCRIPTS=${CMAKE_SOURCE_DIR}
          ${SFI_LUA} packaging/gendoc.lua $<TARGET_FILE:sfirun> docs/cli.md packaging/changelog
          ${CMAKE_INSTALL_PREFIX}/${SFI_DATADIR_REL} ${CMAKE_INSTALL_PREFIX}/${SFI_DOCDIR_REL}
          ${_sfi_gen}/sfirun.1 ${_sfi_gen}/sfirun.bash-completion
  COMMAND gzip -9nf ${_sfi_gen}/sfirun.1
  DEPENDS sfirun packaging/gendoc.lua docs/cli.md packaging/changelog ${_sfi_cli_lua}
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  COMMENT "Generating the man page and bash completion from sfirun --help"
  VERBATIM)
add_custom_command(
  OUTPUT ${_sfi_gen}/copyright ${_sfi_gen}/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_sfi_gen}
  COMMAND ${SFI_LUA} packaging/copyright.lua LICENSE ${_sfi_gen}/copyright
  COMMAND ${CMAKE_COMMAND} -E copy packaging/changelog ${_sfi_gen}/changelog
  COMMAND gzip -9nf ${_sfi_gen}/changelog
  DEPENDS packaging/copyright.lua LICENSE packaging/changelog
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  VERBATIM)
add_custom_target(sfirun_docs ALL DEPENDS ${_sfi_gen}/sfirun.1.gz ${_sfi_gen}/sfirun.bash-completion
  ${_sfi_gen}/copyright ${_sfi_gen}/changelog.gz)

# ---- install rules -------------------------------------------------------------------------
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
  GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
install(TARGETS sfirun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY scripts vendor recipes DESTINATION ${SFI_DATADIR_REL})
# udev reads lib/udev/rules.d under the prefix (not the multiarch libdir)
install(FILES udev/70-sfirun-stlink.rules DESTINATION lib/udev/rules.d)
install(FILES ${_sfi_gen}/sfirun.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${_sfi_gen}/sfirun.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME sfirun)
install(FILES README.md packaging/README.Debian ${_sfi_gen}/copyright ${_sfi_gen}/changelog.gz
  DESTINATION ${SFI_DOCDIR_REL})
install(DIRECTORY docs/ DESTINATION ${SFI_DOCDIR_REL}/docs)
install(FILES packaging/examples/simulated-install.sh packaging/examples/station.sh
  DESTINATION ${SFI_DOCDIR_REL}/examples)
install(FILES packaging/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
  RENAME sfirun)

# ---- the Debian package (cpack -G DEB in the build directory) --------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sfirun)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# placeholder contact: replace with the real maintainer before the package leaves the house
set(CPACK_PACKAGE_CONTACT "The sfirun authors <sfirun@example.org>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${CPACK_PACKAGE_CONTACT})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # sfirun_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION electronics)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # Depends from dpkg-shlibdeps, never a list kept by hand
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "softhsm2, openocd")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "scriptable secure firmware install (SFI) for STM32 microcontrollers")
# one string (separate arguments would make a list); lines of at most 80 columns
set(CPACK_PACKAGE_DESCRIPTION "\
sfirun installs encrypted firmware into STM32 microcontrollers the way ST's
Secure Firmware Install does (encrypted image, per-chip licence from a PKCS#11
HSM, install by the chip's Root Security Services), but every step of the flow
is a Lua recipe that a production engineer can read and change.

This package is for production stations: the sfirun program, its Lua library,
the STM32 device packs, the recipes, udev rules for ST-LINK probes, a simulated
STM32H7 for dry runs, and the licence journal.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/packaging/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS ${CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS})
include(CPack)
