# hookstream_proto_library(<target> PROTOS <files...> [GRPC])
# Generates C++ (and, with GRPC, gRPC service) code for .proto files under protos/ into the build
# tree and wraps it in a static library whose users see the generated headers as
# "hookstream/v1/x.pb.h".
function(hookstream_proto_library target)
  cmake_parse_arguments(ARG "GRPC" "" "PROTOS" ${ARGN})
  add_library(${target} STATIC ${ARG_PROTOS})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
  protobuf_generate(TARGET ${target} LANGUAGE cpp
    IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR}
    PROTOC_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
  if(ARG_GRPC)
    target_link_libraries(${target} PUBLIC gRPC::grpc++)
    protobuf_generate(TARGET ${target} LANGUAGE grpc
      GENERATE_EXTENSIONS .grpc.pb.h .grpc.pb.cc
      PLUGIN "protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>"
      IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR}
      PROTOC_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
  endif()
endfunction()
