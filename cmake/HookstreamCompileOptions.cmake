# Warnings and sanitizers for every hookstream target: call hookstream_target_options(<target>).
#
# HOOKSTREAM_SANITIZE=address: ASan + UBSan (+ LSan), any UBSan finding is fatal.
# HOOKSTREAM_SANITIZE=thread:  TSan. Debian's Abseil and gRPC are not TSan-instrumented, so every
#   executable also links server/common/tsan_absl_sync.cc, which tells TSan about the ordering
#   absl::Mutex, CondVar and Notification provide (for our code and for gRPC's, which uses them),
#   and server/common/tsan_grpc_sync.cc, which does the same for gRPC's handoffs between threads
#   (operation start -> reaction, reactions -> OnDone); -rdynamic exports those definitions so the
#   shared libraries bind to them. Runs use tests/sanitizers/tsan.supp (see the README's
#   "Sanitizers" section).
function(hookstream_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(HOOKSTREAM_SANITIZE STREQUAL "thread")
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      if(NOT TARGET hookstream_tsan_sync)
        add_library(hookstream_tsan_sync OBJECT
          ${HOOKSTREAM_COMPILE_OPTIONS_DIR}/../server/common/tsan_absl_sync.cc
          ${HOOKSTREAM_COMPILE_OPTIONS_DIR}/../server/common/tsan_grpc_sync.cc)
        target_link_libraries(hookstream_tsan_sync PUBLIC absl::synchronization gRPC::grpc++
                              ${CMAKE_DL_LIBS})
      endif()
      target_link_libraries(${target} PRIVATE hookstream_tsan_sync)
    endif()
  endif()
endfunction()

set(HOOKSTREAM_COMPILE_OPTIONS_DIR ${CMAKE_CURRENT_LIST_DIR})

if(HOOKSTREAM_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(HOOKSTREAM_SANITIZE STREQUAL "thread")
  # -U__SANITIZE_THREAD__: Debian's protobuf, gRPC and Abseil were compiled without TSan, and
  # some of their headers change class layouts when they see it (protobuf's MapFieldBase grows
  # two fields: map fields then crash in libprotobuf). Our code must see what the libraries saw.
  # HOOKSTREAM_TSAN turns on server/common/tsan_annotations.h (happens-before at the boundary
  # with uninstrumented gRPC).
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -U__SANITIZE_THREAD__)
  add_compile_definitions(HOOKSTREAM_TSAN=1)
  add_link_options(-fsanitize=thread -rdynamic)
elseif(NOT HOOKSTREAM_SANITIZE STREQUAL "")
  message(FATAL_ERROR "HOOKSTREAM_SANITIZE must be '', 'address' or 'thread'")
endif()

# HOOKSTREAM_FUZZ=ON: the libFuzzer build (clang only, a configure of its own): coverage for
# libFuzzer plus ASan+UBSan on everything; tests/fuzz/ links the fuzzer main into each target.
if(HOOKSTREAM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "HOOKSTREAM_FUZZ needs clang (CXX=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
