# package.cmake - install rules and the Debian packages CPack makes from the default build
# (`cmake --build build --target package`, or `cpack` in the build folder):
#   libnginx-mod-http-dynacode  the nginx module in /usr/lib/nginx/modules and its load snippet
#                               mod-http-dynacode.conf in /usr/share/nginx/modules-available,
#                               enabled in /etc/nginx/modules-enabled by its maintainer scripts
#                               (packaging/postinst, prerm, postrm); it depends on the exact
#                               nginx ABI it was built for (nginx-abi-X-N, which Debian's nginx
#                               provides), read from the installed nginx package;
#   dynacode                    the command in /usr/bin, the shipped policies in
#                               /usr/share/dynacode/policy, and the alert rules and dashboard of
#                               usage/ in /usr/share/dynacode.
# Shared library dependencies come from dpkg-shlibdeps. Included last by the top CMakeLists.txt;
# tests/pkg/test_package.sh builds both packages and installs them into an empty root.

if(DC_SANITIZE)
  message(STATUS "packages: left out of the sanitizer build")
  return()
endif()

set(DC_PKG_DIR ${CMAKE_SOURCE_DIR}/packaging)

# ---- what goes where (relative to the prefix, /usr in the packages) ----
install(TARGETS dynacode_cli RUNTIME DESTINATION bin COMPONENT cli)
install(FILES ${CMAKE_SOURCE_DIR}/policy/default.json ${CMAKE_SOURCE_DIR}/policy/strict.json
              ${CMAKE_SOURCE_DIR}/policy/README.md
        DESTINATION share/dynacode/policy COMPONENT cli)
install(FILES ${CMAKE_SOURCE_DIR}/usage/prometheus/alerts.yml
        DESTINATION share/dynacode/prometheus COMPONENT cli)
install(FILES ${CMAKE_SOURCE_DIR}/usage/grafana/dynacode.json
        DESTINATION share/dynacode/grafana COMPONENT cli)

set(DC_PKG_COMPONENTS cli)
if(TARGET ngx_http_dynacode_module)
  install(FILES ${DC_NGX_MODULE} DESTINATION lib/nginx/modules COMPONENT module
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  # install(FILES) is not stripped by CPACK_STRIP_FILES as targets are: strip it here
  install(CODE "if(CMAKE_INSTALL_DO_STRIP)
    execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-unneeded
      \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/nginx/modules/ngx_http_dynacode_module.so\")
  endif()" COMPONENT module)
  install(FILES ${DC_PKG_DIR}/mod-http-dynacode.conf
          DESTINATION share/nginx/modules-available COMPONENT module)
  list(PREPEND DC_PKG_COMPONENTS module)
endif()

# ---- the nginx ABI the module was built for ----
# Debian's nginx provides a virtual package nginx-abi-VERSION-N; a module built for one ABI must
# not load into another, so its package depends on exactly that one.
set(DC_NGINX_ABI "" CACHE STRING
    "the nginx ABI the module's package depends on (Debian: nginx-abi-VERSION-N); empty: read \
from the installed nginx package at every configure")
set(DC_PKG_NGINX_ABI "${DC_NGINX_ABI}")
find_program(DC_DPKG_QUERY dpkg-query)
if(NOT DC_PKG_NGINX_ABI AND DC_DPKG_QUERY)
  # the package of the nginx the module is tested with first, then Debian's usual names
  set(owner "")
  if(DC_NGINX_BIN)
    get_filename_component(bin "${DC_NGINX_BIN}" REALPATH)
    execute_process(COMMAND ${DC_DPKG_QUERY} -S ${bin} OUTPUT_VARIABLE owner ERROR_QUIET)
    string(REGEX MATCH "^[^:\n]+" owner "${owner}")
  endif()
  foreach(pkg ${owner} nginx nginx-core nginx-light nginx-full nginx-extras)
    execute_process(COMMAND ${DC_DPKG_QUERY} -W -f=\${Provides} ${pkg}
                    OUTPUT_VARIABLE provides ERROR_QUIET)
    string(REGEX MATCH "nginx-abi-[0-9.]+-[0-9]+" DC_PKG_NGINX_ABI "${provides}")
    if(DC_PKG_NGINX_ABI)
      break()
    endif()
  endforeach()
endif()
set(DC_MODULE_DEPENDS "nginx")
if(DC_PKG_NGINX_ABI)
  set(DC_MODULE_DEPENDS "${DC_PKG_NGINX_ABI}")
  if(TARGET ngx_http_dynacode_module)
    message(STATUS "packages: libnginx-mod-http-dynacode depends on ${DC_PKG_NGINX_ABI}")
  endif()
elseif(TARGET ngx_http_dynacode_module)
  message(WARNING "packages: no nginx-abi-* found among the installed nginx packages; "
                  "libnginx-mod-http-dynacode depends on nginx only (set DC_NGINX_ABI)")
endif()

# ---- CPack ----
set(DC_PACKAGE_CONTACT "dynacode developers <dynacode@localhost>" CACHE STRING
    "the Maintainer field of the Debian packages")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dynacode)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${DC_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL ${DC_PKG_COMPONENTS})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_MODULE_PACKAGE_NAME libnginx-mod-http-dynacode)
set(CPACK_DEBIAN_MODULE_PACKAGE_DEPENDS "${DC_MODULE_DEPENDS}")
set(CPACK_DEBIAN_MODULE_PACKAGE_RECOMMENDS "nginx")
set(CPACK_DEBIAN_MODULE_PACKAGE_SUGGESTS "dynacode")
set(CPACK_DEBIAN_MODULE_PACKAGE_CONTROL_EXTRA
    "${DC_PKG_DIR}/postinst;${DC_PKG_DIR}/prerm;${DC_PKG_DIR}/postrm")
set(CPACK_COMPONENT_MODULE_DESCRIPTION
    "nginx module running sandboxed Lua plugins from a polled bundle\n\
ngx_http_dynacode_module polls an HTTP API for a JSON bundle of Lua plugins, compiles\n\
them in a confined helper process, shares them between workers through shared memory\n\
and runs them per request in sandboxed LuaJIT states, under the local policy's quotas.\n\
The status location shows its metrics as JSON or Prometheus text.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME dynacode)
set(CPACK_COMPONENT_CLI_DESCRIPTION
    "check, simulate and watch dynacode plugin bundles\n\
The dynacode command validates a bundle of Lua plugins under a policy, runs a\n\
simulated request through it with the same sandbox as the nginx module, and polls\n\
an API printing the pipeline's events. Ships the example policies, Prometheus\n\
alert rules and a Grafana dashboard.")

include(CPack)

# The package test (a few seconds): builds both packages into a folder of its own with cpack,
# installs them into an empty root with dpkg, and serves the example with the installed files.
if(TARGET ngx_http_dynacode_module)
  find_program(DC_DPKG_DEB dpkg-deb)
  if(DC_DPKG_DEB)
    add_test(NAME pkg.test_package COMMAND bash ${CMAKE_SOURCE_DIR}/tests/pkg/test_package.sh)
    set_tests_properties(pkg.test_package PROPERTIES TIMEOUT 300
      ENVIRONMENT "DC_BUILD_DIR=${CMAKE_BINARY_DIR};DC_NGINX_BIN=${DC_NGINX_BIN};DC_SOURCE_DIR=${CMAKE_SOURCE_DIR};DC_NGINX_ABI=${DC_PKG_NGINX_ABI}")
  endif()
endif()
