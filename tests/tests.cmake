# tests.cmake - one Check executable per tests/unit/test_*.c (each test forks: Check's default),
# and one ctest entry per tests/cli/*.sh script (they drive the built `dynacode` command).
# The tests see every layer (they test the library from inside).
set(DC_ALL_LAYER_DIRS $<TARGET_PROPERTY:dc_pipeline,INTERFACE_INCLUDE_DIRECTORIES>)

# The test build of the library: every layer's sources compiled again with DC_TESTING, which
# adds the test hooks (dc_env_test_hook, the compiler helper's probes, the Valgrind switches
# DC_VALGRIND_UNCONFINED and DC_PCRE2_NO_JIT). Linked only by the unit tests, the crash-test
# command and the test variant of the nginx module; libdynacode, the `dynacode` command and
# ngx_http_dynacode_module.so have none of it (test product.symbols checks). The layering is
# enforced by the product build; this one sees every layer's folder.
set(DC_TEST_LIB_SOURCES "")
foreach(layer ${DC_LAYERS})
  get_target_property(srcs ${layer} SOURCES)
  list(APPEND DC_TEST_LIB_SOURCES ${srcs})
endforeach()
add_library(dynacode_test_obj OBJECT ${DC_TEST_LIB_SOURCES})
set_target_properties(dynacode_test_obj PROPERTIES POSITION_INDEPENDENT_CODE ON
                      C_VISIBILITY_PRESET hidden)
target_compile_definitions(dynacode_test_obj PUBLIC DC_TESTING)
target_include_directories(dynacode_test_obj PUBLIC ${CMAKE_SOURCE_DIR}/include
                           PRIVATE ${DC_ALL_LAYER_DIRS} ${DC_GEN_DIR})
target_link_libraries(dynacode_test_obj PUBLIC PkgConfig::LUAJIT PkgConfig::CJSON PkgConfig::PCRE2
                      PkgConfig::SECCOMP PkgConfig::CURL PkgConfig::CRYPTO PkgConfig::HS
                      Threads::Threads m)
add_library(dynacode_test STATIC $<TARGET_OBJECTS:dynacode_test_obj>)
target_compile_definitions(dynacode_test PUBLIC DC_TESTING)
target_include_directories(dynacode_test PUBLIC ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(dynacode_test PUBLIC PkgConfig::LUAJIT PkgConfig::CJSON PkgConfig::PCRE2
                      PkgConfig::SECCOMP PkgConfig::CURL PkgConfig::CRYPTO PkgConfig::HS
                      Threads::Threads m)
add_library(dc_sim_test STATIC ${DC_SIM_SOURCES})
target_include_directories(dc_sim_test PUBLIC ${CMAKE_SOURCE_DIR}/src/hosts/sim
                           PRIVATE ${DC_ALL_LAYER_DIRS})
target_link_libraries(dc_sim_test PUBLIC dynacode_test)

file(GLOB DC_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${DC_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/unit/testutil.c)
  target_include_directories(${name} PRIVATE ${DC_ALL_LAYER_DIRS} ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE dc_sim_test dynacode_test PkgConfig::CHECK)
  if(name STREQUAL "test_crash")
    # crash_in_c, the test-only crashing C function, exists only in test programs
    target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit/crash_fn.c)
  endif()
  add_test(NAME unit.${name} COMMAND ${name})
  set_tests_properties(unit.${name} PROPERTIES TIMEOUT 300
    ENVIRONMENT "DC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()

# The command with crash_in_c in every plugin environment, for the CLI tests of a crashing
# plugin only: never installed, never the product.
add_executable(dynacode_crashtest ${DC_CLI_SOURCES} ${CMAKE_SOURCE_DIR}/tests/unit/crash_fn.c)
target_include_directories(dynacode_crashtest PRIVATE ${DC_ALL_LAYER_DIRS}
                           ${CMAKE_SOURCE_DIR}/src/hosts/cli)
target_link_libraries(dynacode_crashtest PRIVATE dc_sim_test dynacode_test)

# The product binaries carry no test hook; the test build does (so the check can fail).
add_test(NAME product.symbols COMMAND bash ${CMAKE_SOURCE_DIR}/tests/tools/product_symbols.sh
         --product $<TARGET_FILE:dynacode> $<TARGET_FILE:dynacode_cli>
         --test $<TARGET_FILE:dynacode_test> $<TARGET_FILE:dynacode_crashtest>)

file(GLOB DC_CLI_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/cli/test_*.sh)
foreach(script ${DC_CLI_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME cli.${name} COMMAND bash ${script})
  set_tests_properties(cli.${name} PROPERTIES TIMEOUT 300
    ENVIRONMENT "DYNACODE=$<TARGET_FILE:dynacode_cli>;DYNACODE_CRASHTEST=$<TARGET_FILE:dynacode_crashtest>;DC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()

# Benchmarks: built with everything else, run by hand (they print figures, assert nothing).
file(GLOB DC_BENCHES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/bench/bench_*.c)
foreach(src ${DC_BENCHES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${DC_ALL_LAYER_DIRS})
  target_link_libraries(${name} PRIVATE dc_sim dynacode)
endforeach()
