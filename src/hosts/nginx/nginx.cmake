# nginx.cmake - the nginx dynamic module ngx_http_dynacode_module.so, built against the
# distribution's nginx (the source tree of Debian's nginx-dev, configured --with-compat) by the
# default build, and its integration tests (tests/nginx/test_*.sh, each drives a real nginx).
# Included from the top CMakeLists.txt after the library and the tests.

set(DC_NGINX_SRC "/usr/share/nginx/src" CACHE PATH
    "nginx source tree to build the module against (Debian: package nginx-dev)")
set(DC_NGINX_BIN "/usr/sbin/nginx" CACHE FILEPATH
    "the nginx the integration tests run (must match DC_NGINX_SRC)")

if(DC_SANITIZE)
  # an ASan-instrumented libdynacode cannot be loaded into the distribution's nginx (the ASan
  # runtime must come first in the process): the module is built and tested without sanitizers
  message(STATUS "nginx module: left out of the sanitizer build")
  return()
endif()

if(NOT EXISTS "${DC_NGINX_SRC}/configure")
  message(STATUS "nginx module: no nginx source tree in ${DC_NGINX_SRC} (install nginx-dev); "
                 "the module and its tests are left out")
  return()
endif()

set(DC_NGX_DIR ${CMAKE_SOURCE_DIR}/src/hosts/nginx)
set(DC_NGX_BUILD ${CMAKE_BINARY_DIR}/nginx-build)
set(DC_NGX_MODULE ${CMAKE_BINARY_DIR}/ngx_http_dynacode_module.so)
file(GLOB DC_NGX_SOURCES CONFIGURE_DEPENDS ${DC_NGX_DIR}/*.c ${DC_NGX_DIR}/*.h)

# nginx's configure (a few seconds), again only when the module's config or this script change
add_custom_command(
  OUTPUT ${DC_NGX_BUILD}/objs/Makefile
  COMMAND bash ${DC_NGX_DIR}/build.sh configure ${DC_NGINX_SRC} ${DC_NGX_BUILD} ${DC_NGX_DIR}
          $<TARGET_FILE:dynacode> ${CMAKE_SOURCE_DIR}/include
  DEPENDS ${DC_NGX_DIR}/config ${DC_NGX_DIR}/build.sh dynacode
  COMMENT "Configuring nginx from ${DC_NGINX_SRC} for ngx_http_dynacode_module"
  VERBATIM)

# `make modules`: rebuilt when the module's sources, the public header or libdynacode change
add_custom_command(
  OUTPUT ${DC_NGX_MODULE}
  COMMAND bash ${DC_NGX_DIR}/build.sh make ${DC_NGX_BUILD} ${DC_NGX_MODULE}
  DEPENDS ${DC_NGX_BUILD}/objs/Makefile ${DC_NGX_SOURCES} ${CMAKE_SOURCE_DIR}/include/dynacode.h
          dynacode
  COMMENT "Building ngx_http_dynacode_module.so"
  VERBATIM)

add_custom_target(ngx_http_dynacode_module ALL DEPENDS ${DC_NGX_MODULE})

# The test variant: the same module over the test build of the library (dynacode_test, see
# tests/tests.cmake) plus tests/unit/crash_fn.c (crash_in_c in every plugin environment), in a
# build tree of its own, for the tests of a crashing plugin only.
set(DC_NGX_TEST_BUILD ${CMAKE_BINARY_DIR}/nginx-build-test)
set(DC_NGX_TEST_MODULE ${CMAKE_BINARY_DIR}/ngx_http_dynacode_module_test.so)
set(DC_NGX_TEST_SRCS ${CMAKE_SOURCE_DIR}/tests/unit/crash_fn.c)
add_custom_command(
  OUTPUT ${DC_NGX_TEST_BUILD}/objs/Makefile
  COMMAND ${CMAKE_COMMAND} -E env DYNACODE_TEST_SRCS=${DC_NGX_TEST_SRCS}
          bash ${DC_NGX_DIR}/build.sh configure ${DC_NGINX_SRC} ${DC_NGX_TEST_BUILD} ${DC_NGX_DIR}
          $<TARGET_FILE:dynacode_test> ${CMAKE_SOURCE_DIR}/include
  DEPENDS ${DC_NGX_DIR}/config ${DC_NGX_DIR}/build.sh dynacode_test
  COMMENT "Configuring nginx for the test variant of ngx_http_dynacode_module"
  VERBATIM)
add_custom_command(
  OUTPUT ${DC_NGX_TEST_MODULE}
  COMMAND bash ${DC_NGX_DIR}/build.sh make ${DC_NGX_TEST_BUILD} ${DC_NGX_TEST_MODULE}
  DEPENDS ${DC_NGX_TEST_BUILD}/objs/Makefile ${DC_NGX_SOURCES} ${DC_NGX_TEST_SRCS}
          ${CMAKE_SOURCE_DIR}/include/dynacode.h dynacode_test
  COMMENT "Building ngx_http_dynacode_module_test.so (with crash_in_c)"
  VERBATIM)
add_custom_target(ngx_http_dynacode_module_test ALL DEPENDS ${DC_NGX_TEST_MODULE})
add_test(NAME product.module_symbols COMMAND bash ${CMAKE_SOURCE_DIR}/tests/tools/product_symbols.sh
         --product ${DC_NGX_MODULE} --test ${DC_NGX_TEST_MODULE})

# Integration tests: one ctest entry per script; each starts its own nginx and API server on
# free loopback ports in a private prefix, and stops them whatever happens.
file(GLOB DC_NGX_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/nginx/test_*.sh)
foreach(script ${DC_NGX_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME nginx.${name} COMMAND bash ${script})
  set_tests_properties(nginx.${name} PROPERTIES TIMEOUT 180
    ENVIRONMENT "DC_NGINX_MODULE=${DC_NGX_MODULE};DC_NGINX_TEST_MODULE=${DC_NGX_TEST_MODULE};DC_NGINX_BIN=${DC_NGINX_BIN};DC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()
