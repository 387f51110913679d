# fuzz.cmake - the libFuzzer targets (tests/fuzz/fuzz_*.c), built instead of the tests and the
# nginx module when DC_FUZZ is ON (clang only). scripts/fuzz.sh configures, builds and runs them.
# The bundle and API targets take the confined compiler's place with an in-process one
# (fuzz_compile.c, through the linker's --wrap): a fork per input would dominate the run.

if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "DC_FUZZ needs clang (libFuzzer): configure with CC=clang-14")
endif()

set(DC_FUZZ_TARGETS bundle policy snapshot lpattern api hostset)
set(DC_FUZZ_WRAP
  -Wl,--wrap=dc_compiler_open_opts -Wl,--wrap=dc_compiler_compile
  -Wl,--wrap=dc_compiler_broken -Wl,--wrap=dc_compiler_close)

foreach(t ${DC_FUZZ_TARGETS})
  add_executable(fuzz_${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${t}.c
                           ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_compile.c)
  # every layer's folder, as the unit tests see them, and the simulated request's
  target_include_directories(fuzz_${t} PRIVATE
                             $<TARGET_PROPERTY:dc_pipeline,INTERFACE_INCLUDE_DIRECTORIES>
                             ${CMAKE_SOURCE_DIR}/src/hosts/sim ${CMAKE_SOURCE_DIR}/tests/fuzz)
  target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer ${DC_FUZZ_WRAP})
  target_link_libraries(fuzz_${t} PRIVATE dc_sim dynacode)
endforeach()
