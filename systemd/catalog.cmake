# Journal catalog for `journalctl -x` (include from systemd/CMakeLists.txt). After
# installing, run `journalctl --update-catalog` (packages do this in postinst).
install(FILES ${CMAKE_CURRENT_LIST_DIR}/custguard.catalog
        DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/catalog)
