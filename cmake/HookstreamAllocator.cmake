# The allocator hookstreamd links with: jemalloc (Debian's libjemalloc-dev) when found. The
# appender and the gRPC threads allocate and free many small blocks per event (requests,
# serialized events, responses, live entries), often on different threads; with jemalloc the
# server spent 15-25% less CPU per published event than with glibc's malloc, and ~1.7 KiB more
# RSS per idle subscriber (issue 9, notes of session s4). -DHOOKSTREAM_JEMALLOC=OFF: glibc.
# Only hookstreamd links it; the sanitizer and fuzz builds keep their own allocator (the
# sanitizers interpose malloc themselves), so there it defaults OFF and cannot be turned on.
find_library(HOOKSTREAM_JEMALLOC_LIBRARY NAMES jemalloc)
set(_hookstream_jemalloc_default OFF)
if(HOOKSTREAM_JEMALLOC_LIBRARY AND HOOKSTREAM_SANITIZE STREQUAL "" AND NOT HOOKSTREAM_FUZZ)
  set(_hookstream_jemalloc_default ON)
endif()
option(HOOKSTREAM_JEMALLOC "Link hookstreamd with jemalloc (libjemalloc-dev)"
       ${_hookstream_jemalloc_default})
if(HOOKSTREAM_JEMALLOC)
  if(NOT HOOKSTREAM_JEMALLOC_LIBRARY)
    message(FATAL_ERROR "HOOKSTREAM_JEMALLOC=ON but libjemalloc was not found (apt install libjemalloc-dev)")
  endif()
  if(NOT HOOKSTREAM_SANITIZE STREQUAL "" OR HOOKSTREAM_FUZZ)
    message(FATAL_ERROR "HOOKSTREAM_JEMALLOC must be OFF in sanitizer and fuzz builds")
  endif()
  message(STATUS "hookstreamd links jemalloc: ${HOOKSTREAM_JEMALLOC_LIBRARY}")
endif()

# hookstream_link_allocator(<executable>): links the chosen allocator into a server binary.
function(hookstream_link_allocator target)
  if(HOOKSTREAM_JEMALLOC)
    target_link_libraries(${target} PRIVATE ${HOOKSTREAM_JEMALLOC_LIBRARY})
  endif()
endfunction()
