# Test registration. Each kind of test is found by file name, so adding a test is adding a
# file. Labels: unit (C, cmocka), lua (sfi.* modules on the simulator), e2e (recipes on the
# simulator, one per case), hsm (SoftHSM2 token), interop (OpenOCD), db (PostgreSQL server),
# fuzz (bounded libFuzzer).
set(SFI_TEST_ENV
  "SFIRUN=$<TARGET_FILE:sfirun>"
  "SFI_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "SFI_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "SFIRUN_STATE_DIR=${CMAKE_BINARY_DIR}/test-state"
  "SFIRUN_LOCK_DIR=${CMAKE_BINARY_DIR}/test-locks"
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0"
  "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

# C unit tests: tests/unit/test_NAME.c
file(GLOB SFI_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${SFI_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/engine ${P11KIT_INCLUDE_DIRS})
  target_compile_options(${name} PRIVATE ${SFI_WARNINGS})
  target_compile_definitions(${name} PRIVATE SFI_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  if(name MATCHES "^test_sim")
    # the simulator's own tests link the simulator's ring alone: proof it needs nothing else
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/sim)
    target_link_libraries(${name} PRIVATE sfi_sim PkgConfig::CMOCKA)
  else()
    target_link_libraries(${name} PRIVATE sfi_engine PkgConfig::CMOCKA)
  endif()
  add_test(NAME unit/${name} COMMAND ${name})
  set_tests_properties(unit/${name} PROPERTIES LABELS unit SKIP_RETURN_CODE 77
    ENVIRONMENT "${SFI_TEST_ENV}" TIMEOUT 300)
endforeach()

# Lua tests run by the host: tests/<kind>/NAME_test.lua, label = kind (lua, cli -> lua, hsm, interop)
function(sfi_lua_tests dir label)
  file(GLOB files CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${dir}/*_test.lua)
  foreach(f ${files})
    get_filename_component(name ${f} NAME_WE)
    add_test(NAME ${dir}/${name}
      COMMAND sfirun -I ${CMAKE_SOURCE_DIR}/tests/lib --test ${f}
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${dir}/${name} PROPERTIES LABELS ${label} SKIP_RETURN_CODE 77
      ENVIRONMENT "${SFI_TEST_ENV}" TIMEOUT 600)
  endforeach()
endfunction()
sfi_lua_tests(lua lua)
sfi_lua_tests(cli lua)
sfi_lua_tests(hsm hsm)
sfi_lua_tests(interop interop)
sfi_lua_tests(db db)

# End-to-end cases: tests/e2e/cases/NAME.lua, each run by tests/e2e/run.lua
file(GLOB SFI_E2E CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/cases/*.lua)
foreach(f ${SFI_E2E})
  get_filename_component(name ${f} NAME_WE)
  add_test(NAME e2e/${name}
    COMMAND sfirun -I ${CMAKE_SOURCE_DIR}/tests/lib --test ${CMAKE_SOURCE_DIR}/tests/e2e/run.lua ${f}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e/${name} PROPERTIES LABELS e2e SKIP_RETURN_CODE 77
    ENVIRONMENT "${SFI_TEST_ENV}" TIMEOUT 600)
endforeach()

# Fuzz targets: tests/fuzz/fuzz_NAME.c with a seed corpus in tests/fuzz/corpus/NAME/.
# Built only with SFI_FUZZ (clang); each runs a bounded time in the suite.
if(SFI_FUZZ)
  # seconds per target: $SFI_FUZZ_SECONDS when configuring, else 20 (not cached)
  set(SFI_FUZZ_SECONDS 20)
  if(DEFINED ENV{SFI_FUZZ_SECONDS})
    set(SFI_FUZZ_SECONDS $ENV{SFI_FUZZ_SECONDS})
  endif()
  file(GLOB SFI_FUZZERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  foreach(src ${SFI_FUZZERS})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" short ${name})
    add_executable(${name} ${src})
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/sim
                                               ${P11KIT_INCLUDE_DIRS})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE sfi_engine)
    file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz-corpus/${short})
    add_test(NAME fuzz/${short}
      COMMAND ${name} -max_total_time=${SFI_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
              -print_final_stats=1 ${CMAKE_BINARY_DIR}/fuzz-corpus/${short}
              ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${short})
    # UBSan findings stop the run (libFuzzer alone would print them and go on)
    set_tests_properties(fuzz/${short} PROPERTIES LABELS fuzz TIMEOUT 900
      ENVIRONMENT "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endforeach()
endif()

# The Debian package (label package): packaging/build-deb.sh builds it in
# build/<preset>/package-test with the package preset, packaging/check-deb.sh checks it and runs
# the extracted program with the source tree hidden. Not in the asan preset (the package is a
# separate, non-sanitized build); the dev preset runs it.
if(NOT SFI_SANITIZE AND NOT SFI_FUZZ AND NOT SFI_PACKAGE)
  add_test(NAME package/deb
    COMMAND sh -c "packaging/build-deb.sh \"$1\" >\"$1.log\" 2>&1 || { cat \"$1.log\"; exit 1; }; packaging/check-deb.sh \"$1\"/sfirun_*.deb"
            sh ${CMAKE_BINARY_DIR}/package-test
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(package/deb PROPERTIES LABELS package SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()
