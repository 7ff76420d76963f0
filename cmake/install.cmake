# install.cmake - where `cmake --install` puts mqseal's files (docs/OPERATIONS.md, "Installing").
# Included from the top CMakeLists.txt after add_subdirectory(proxy); the binary's own rule is in
# proxy/CMakeLists.txt (${CMAKE_INSTALL_BINDIR}).
#
#   bin/mqseal                                    proxy/CMakeLists.txt
#   <sysconfdir>/mqseal/mqseal.conf.example       never a live mqseal.conf: that one is the admin's
#   share/man/man1/mqseal.1
#   share/doc/mqseal/{OPERATIONS,PROTOCOL}.md
#   lib/systemd/system/mqseal.service             ExecStart and the config path follow the prefix
#
# <sysconfdir> is CMAKE_INSTALL_FULL_SYSCONFDIR: /etc for the prefix /usr (not /usr/etc), and
# <prefix>/etc otherwise (GNUInstallDirs). It is fixed when the build directory is configured, so
# choose the prefix then: cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr; DESTDIR= still applies.
include_guard(GLOBAL)
include(GNUInstallDirs)

set(MQSEAL_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where mqseal.service is installed (relative paths are under CMAKE_INSTALL_PREFIX)")

install(FILES ${PROJECT_SOURCE_DIR}/conf/mqseal.conf.example
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mqseal)
install(FILES ${PROJECT_SOURCE_DIR}/docs/mqseal.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/OPERATIONS.md ${PROJECT_SOURCE_DIR}/docs/PROTOCOL.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The unit names /usr/bin/mqseal and /etc/mqseal (the Debian layout). For another prefix the
# installed copy names the directories the files above really go to.
file(READ ${PROJECT_SOURCE_DIR}/conf/mqseal.service px_unit)
string(REPLACE "/usr/bin/mqseal" "${CMAKE_INSTALL_FULL_BINDIR}/mqseal" px_unit "${px_unit}")
string(REPLACE "/etc/mqseal/" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/mqseal/" px_unit "${px_unit}")
string(REPLACE "/usr/share/doc/mqseal/" "${CMAKE_INSTALL_FULL_DOCDIR}/" px_unit "${px_unit}")
file(WRITE ${PROJECT_BINARY_DIR}/mqseal.service "${px_unit}")
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/conf/mqseal.service)
install(FILES ${PROJECT_BINARY_DIR}/mqseal.service DESTINATION ${MQSEAL_SYSTEMD_UNITDIR})
unset(px_unit)
