# Journal catalog for `journalctl -x` (included by systemd/CMakeLists.txt). Packages run
# `journalctl --update-catalog` in postinst; a direct `cmake --install` (no DESTDIR) does it
# here.
install(FILES ${CMAKE_CURRENT_LIST_DIR}/custguard.catalog DESTINATION lib/systemd/catalog)
install(CODE [[
    if("$ENV{DESTDIR}" STREQUAL "")
        execute_process(COMMAND journalctl --update-catalog RESULT_VARIABLE rc)
        if(NOT rc EQUAL 0)
            message(WARNING "journalctl --update-catalog failed (${rc}); run it by hand")
        endif()
    endif()
]])
