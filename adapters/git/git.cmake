# adapters/git: the libgit2 reader of v1 storage (users, history, blocks, pending diffs).
add_library(sg_adapters_git
    ${CMAKE_CURRENT_SOURCE_DIR}/git/errors.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/history.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/libgit2.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/pending_diffs.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/reader.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/reader_history.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/reader_since.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/git/safe_fs.cpp)
target_include_directories(sg_adapters_git PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(sg_adapters_git
    PUBLIC PkgConfig::LIBGIT2 sg_adapters_v1 Boost::headers nlohmann_json::nlohmann_json)
