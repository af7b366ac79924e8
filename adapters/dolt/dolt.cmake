# adapters/dolt: MariaDB Connector/C writer and reader of the v2 tables (connection, schema
# migrations, bulk write and lossless read of v1 user states, Dolt commits, the control tables).
# Synchronous.
add_library(sg_adapters_dolt
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/connection.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/control.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/dolt_commit.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/error.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/schema.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/read_parts.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/rows.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/store_apply.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/store_read.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/store_write.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dolt/values.cpp)
target_include_directories(sg_adapters_dolt PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(sg_adapters_dolt
    PUBLIC sg_v1_model Boost::headers nlohmann_json::nlohmann_json
    PRIVATE PkgConfig::MARIADB)
