# Warnings and sanitizers for every hookstream target: call hookstream_target_options(<target>).
function(hookstream_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

if(HOOKSTREAM_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(HOOKSTREAM_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT HOOKSTREAM_SANITIZE STREQUAL "")
  message(FATAL_ERROR "HOOKSTREAM_SANITIZE must be '', 'address' or 'thread'")
endif()
