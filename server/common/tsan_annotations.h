// Happens-before annotations for the few handoffs through uninstrumented libraries that
// server/common/tsan_grpc_sync.cc cannot see from outside (TSan builds only: HOOKSTREAM_TSAN,
// set by cmake/HookstreamCompileOptions.cmake; no-ops otherwise — TSan builds compile with
// -U__SANITIZE_THREAD__ because of protobuf's headers, hence a define of our own).
//
// tsan_grpc_sync.cc orders each gRPC operation's start before its reaction, and releases on the
// reactor when gRPC may run OnDone (or OnCancel) on another thread. The acquire of that last
// handoff must be in the reaction itself, since gRPC reaches it through inline code only:
//   - every reactor's OnDone and OnCancel starts with
//     HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this)) (ClientReactor for
//     client reactors: the address gRPC released on). gRPC's DefaultReactor needs none: its
//     OnDone runs inline, on the thread that released;
//   - memory handed to gRPC with a destroy callback (a grpc::Slice's user data) is released when
//     handed over and acquired in the callback, which runs on one of gRPC's threads.
// Only orderings gRPC guarantees are declared, so races in our code are still reported.
#ifndef HOOKSTREAM_SERVER_COMMON_TSAN_ANNOTATIONS_H_
#define HOOKSTREAM_SERVER_COMMON_TSAN_ANNOTATIONS_H_

#if defined(HOOKSTREAM_TSAN)
#include <sanitizer/tsan_interface.h>
#define HS_TSAN_RELEASE(addr) __tsan_release(const_cast<void*>(static_cast<const void*>(addr)))
#define HS_TSAN_ACQUIRE(addr) __tsan_acquire(const_cast<void*>(static_cast<const void*>(addr)))
#else
#define HS_TSAN_RELEASE(addr) static_cast<void>(addr)
#define HS_TSAN_ACQUIRE(addr) static_cast<void>(addr)
#endif

#endif  // HOOKSTREAM_SERVER_COMMON_TSAN_ANNOTATIONS_H_
