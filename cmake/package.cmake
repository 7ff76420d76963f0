# package.cmake - a Debian package of the installed files, with CPack's DEB generator:
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release \
#         -DMQSEAL_TESTS=OFF -DMQSEAL_BENCH=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)   -> build-deb/mqseal_<ver>_<arch>.deb
# The package holds what `cmake --install` installs (cmake/install.cmake), under the prefix the tree
# was configured with: /usr gives the Debian layout (/usr/bin/mqseal, /etc/mqseal/mqseal.conf.example,
# /usr/lib/systemd/system/mqseal.service). Depends are computed by dpkg-shlibdeps (dpkg-dev) from the
# binary. Maintainer scripts (packaging/deb/): postinst creates the system user "mqseal" the unit runs
# as, and neither enables nor starts the service (it needs a configuration and a key first); prerm
# stops it on removal. The example configuration is a conffile: local edits survive upgrades.
# tests/integration/test_package.py builds, inspects and installs the package.
include_guard(GLOBAL)
include(GNUInstallDirs)

set(CPACK_PACKAGE_NAME mqseal)
set(CPACK_PACKAGE_VENDOR "mqseal")
set(CPACK_PACKAGE_CONTACT "mqseal maintainers <mqseal@invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "end-to-end payload sealing sidecar for unmodified MQTT devices")
set(CPACK_PACKAGE_DESCRIPTION "mqseal sits between an unmodified MQTT device and its broker and seals every
payload with AES-256-GCM; keys are agreed with the other sidecars over the broker itself.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES TRUE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# useradd (postinst) is in passwd; the TLS trust store for broker.tls without ca_file.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(px_pkg ${PROJECT_BINARY_DIR}/deb-control)
file(WRITE ${px_pkg}/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/mqseal/mqseal.conf.example\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm
    ${px_pkg}/conffiles)
unset(px_pkg)
include(CPack)
