# adapters/v1/model.cmake: the v1 storage model's pure code (frontmatter, PyYAML-compatible YAML to
# JSON, rendering v1's JSON answers). Included from adapters/CMakeLists.txt.
add_library(sg_v1_model
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/frontmatter.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_json.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_numbers.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_resolve.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_scalars.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_compose.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_construct.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_encode.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_emit.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/yaml_exact.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/columns.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/render.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/render_history.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/v1/v2_render.cpp)
target_include_directories(sg_v1_model PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(sg_v1_model PUBLIC sg_adapters_v1 yaml-cpp nlohmann_json::nlohmann_json)
