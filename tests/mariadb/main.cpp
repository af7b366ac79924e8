// tests/mariadb/main: the Catch2 runner of dolt_tests (its own binary: it needs the MariaDB
// server that the ctest fixture starts, unlike unit_tests).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
