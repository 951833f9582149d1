# Header-only dependencies in a cross build: the build machine's nlohmann-json headers serve
# the target too. They are published through a folder that holds only them, because putting
# the build machine's /usr/include on the target's include path would mix two C libraries'
# headers. find_package(nlohmann_json) then finds this folder's config instead of searching
# the target's root (where Debian installs no arm64 copy).
find_path(OSPREY_HOST_NLOHMANN_INCLUDE nlohmann/json.hpp PATHS /usr/include /usr/local/include
          NO_CMAKE_FIND_ROOT_PATH NO_DEFAULT_PATH)
if(NOT OSPREY_HOST_NLOHMANN_INCLUDE)
  message(FATAL_ERROR "nlohmann/json.hpp not found on the build machine (Debian: nlohmann-json3-dev)")
endif()
set(cross_deps ${CMAKE_BINARY_DIR}/cross_deps)
file(MAKE_DIRECTORY ${cross_deps}/include)
if(NOT EXISTS ${cross_deps}/include/nlohmann)
  file(CREATE_LINK ${OSPREY_HOST_NLOHMANN_INCLUDE}/nlohmann ${cross_deps}/include/nlohmann SYMBOLIC)
endif()
file(WRITE ${cross_deps}/nlohmann_json/nlohmann_jsonConfig.cmake
"if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${cross_deps}/include)
endif()
")
set(nlohmann_json_DIR ${cross_deps}/nlohmann_json CACHE PATH "nlohmann-json for the cross build" FORCE)
