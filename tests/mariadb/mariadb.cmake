# tests/mariadb: a private MariaDB server as a ctest fixture ("mariadb"), and dolt_tests, the
# Catch2 suite of adapters/dolt that runs against it. Any test can require the server with
# FIXTURES_REQUIRED mariadb and read its connection details from ${SG_MARIADB_ENV_FILE}.
if(TARGET sg_adapters_dolt)
    set(SG_MARIADB_DIR ${CMAKE_BINARY_DIR}/mariadb-test)
    set(SG_MARIADB_ENV_FILE ${SG_MARIADB_DIR}/conn.env)
    set(SG_MARIADB_SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/mariadb/server.sh)

    add_test(NAME mariadb_start COMMAND bash ${SG_MARIADB_SCRIPT} start ${SG_MARIADB_DIR})
    add_test(NAME mariadb_stop COMMAND bash ${SG_MARIADB_SCRIPT} stop ${SG_MARIADB_DIR})
    set_tests_properties(mariadb_start PROPERTIES FIXTURES_SETUP mariadb TIMEOUT 180)
    set_tests_properties(mariadb_stop PROPERTIES FIXTURES_CLEANUP mariadb TIMEOUT 120)

    file(GLOB SG_DOLT_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/mariadb/*.cpp)
    add_executable(dolt_tests ${SG_DOLT_TEST_SOURCES})
    target_link_libraries(dolt_tests PRIVATE Catch2::Catch2 sg_adapters_dolt sg_jobs)
    add_test(NAME dolt_tests COMMAND dolt_tests --use-colour no)
    set_tests_properties(dolt_tests PROPERTIES
        FIXTURES_REQUIRED mariadb
        ENVIRONMENT "SG_MARIADB_ENV=${SG_MARIADB_ENV_FILE}"
        TIMEOUT 600)
endif()
