# D-Bus policy of the control plane (include from systemd/CMakeLists.txt). dbus-daemon
# reads it from /usr/share/dbus-1/system.d/; `systemctl reload dbus` picks it up.
install(FILES ${CMAKE_CURRENT_LIST_DIR}/org.custguard1.conf
        DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/system.d)
