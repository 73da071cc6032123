# Finds Debian's packages and the pinned ONNX Runtime (fetched at configure time unless
# -DONNXRUNTIME_ROOT= points at an install with include/ and lib/).
find_package(ONNX REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(fmt REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(Threads REQUIRED)
# libcpp-httplib-dev: Debian builds cpp-httplib as a library (the header declares, the .so defines).
find_path(HTTPLIB_INCLUDE_DIR httplib.h REQUIRED)
find_library(HTTPLIB_LIBRARY NAMES cpp-httplib REQUIRED)

set(ONNXRUNTIME_ROOT "" CACHE PATH "ONNX Runtime install (include/, lib/); empty = fetch the pinned build")
if(NOT ONNXRUNTIME_ROOT)
  set(_ort_dest ${CMAKE_SOURCE_DIR}/third_party/onnxruntime)
  execute_process(
    COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/fetch_onnxruntime.sh ${_ort_dest}
    RESULT_VARIABLE _ort_rc)
  if(NOT _ort_rc EQUAL 0)
    message(FATAL_ERROR "fetching ONNX Runtime failed (see above)")
  endif()
  set(ONNXRUNTIME_ROOT ${_ort_dest} CACHE PATH "" FORCE)
endif()
find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h
  PATHS ${ONNXRUNTIME_ROOT}/include ${ONNXRUNTIME_ROOT}/include/onnxruntime NO_DEFAULT_PATH REQUIRED)
find_library(ORT_LIBRARY NAMES onnxruntime libonnxruntime.so.1
  PATHS ${ONNXRUNTIME_ROOT}/lib NO_DEFAULT_PATH REQUIRED)
add_library(onnxruntime::onnxruntime SHARED IMPORTED GLOBAL)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION ${ORT_LIBRARY}
  IMPORTED_NO_SONAME FALSE
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES ${ORT_INCLUDE_DIR}
  INTERFACE_INCLUDE_DIRECTORIES ${ORT_INCLUDE_DIR})
get_filename_component(ORT_LIBRARY_DIR ${ORT_LIBRARY} DIRECTORY)
set(CMAKE_BUILD_RPATH ${ORT_LIBRARY_DIR})
set(CMAKE_INSTALL_RPATH ${ORT_LIBRARY_DIR})
# libzstd-dev, liblz4-dev (src/codec): Debian ships pkg-config files for both; liblz4-dev has no
# CMake package.
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
