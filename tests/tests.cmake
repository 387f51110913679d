# tests.cmake - one Check executable per tests/unit/test_*.c (each test forks: Check's default),
# and one ctest entry per tests/cli/*.sh script (they drive the built `dynacode` command).
# The tests see every layer (they test the library from inside).
set(DC_ALL_LAYER_DIRS $<TARGET_PROPERTY:dc_pipeline,INTERFACE_INCLUDE_DIRECTORIES>)

file(GLOB DC_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${DC_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/unit/testutil.c)
  target_include_directories(${name} PRIVATE ${DC_ALL_LAYER_DIRS} ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE dc_sim dynacode PkgConfig::CHECK)
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
target_link_libraries(dynacode_crashtest PRIVATE dc_sim dynacode)

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
