// TSan builds only (HOOKSTREAM_SANITIZE=thread): makes the ordering gRPC provides between its
// threads visible to ThreadSanitizer, the way tsan_absl_sync.cc does for Abseil's locks.
//
// Debian's libgrpc and libgrpc++ are not compiled with TSan, but much of gRPC's C++ API is inline
// code from grpcpp headers, compiled (instrumented) into our binaries: the callback API's
// CallOpSets, reactor plumbing and (de)serialization. gRPC moves each operation from the thread
// that starts it to the thread that runs its reaction through atomics inside libgrpc, which TSan
// never sees, so every such handoff looks like a data race — in that inline code and in ours.
// This file defines, in the executable, the few exported libgrpc/libgrpc++ functions every handoff
// goes through. The dynamic linker binds every call to them here first (from our code and
// from libgrpc++, through its PLT; -rdynamic exports these definitions); each tells TSan what
// gRPC guarantees and calls the real function (dlsym(RTLD_NEXT)):
//
//   - grpc_call_start_batch: every operation on a call. Release on the batch's tag, and on the
//     payload of each message sent (the bytes our serializer wrote, which the in-process transport
//     hands to the receiving call as they are). A callback-API tag (CallbackWithSuccessTag,
//     CallbackWithStatusTag: inline classes whose StaticRun libgrpc calls when the operation
//     completes) gets a trampoline as its functor_run, which acquires on the tag before running
//     the real StaticRun: the reaction sees everything done before the operation started.
//   - grpc_byte_buffer_reader_peek / _next: acquire on the payload of a received message before
//     the deserializer reads it.
//   - ServerCallbackCall::ScheduleOnDone, ClientReactor::InternalScheduleOnDone (which may run
//     OnDone on another thread) and ServerCallbackCall::CallOnCancel (may run OnCancel on
//     another thread): release on the reactor. Reactors' OnDone/OnCancel acquire on themselves
//     (HS_TSAN_ACQUIRE, tsan_annotations.h): the only step of a handoff that runs in inline
//     code with no exported function before it.
//   - Server::UnrefWithPossibleNotify / UnrefAndWaitLocked: the end of each callback call before
//     Server::Shutdown returns.
//
// Only what gRPC documents is declared (an operation's start happens before its reaction; every
// reaction happens before OnDone), on the objects it concerns, so two of our threads touching
// shared state without gRPC ordering them are still reported.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "grpc/byte_buffer_reader.h"
#include "grpc/grpc.h"
#include "grpcpp/server.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/server_callback.h"

namespace {

void* RealSymbol(void* handle, const char* name, bool required) {
  void* fn = dlsym(handle, name);
  if (fn == nullptr && required) {
    std::fprintf(stderr, "tsan_grpc_sync: %s not found\n", name);
    std::abort();
  }
  return fn;
}

// The real function behind one interposed symbol, resolved on first use.
template <typename Fn>
Fn Real(std::atomic<void*>* slot, const char* name) {
  void* fn = slot->load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = RealSymbol(RTLD_NEXT, name, true);
    slot->store(fn, std::memory_order_release);
  }
  return reinterpret_cast<Fn>(fn);
}

#define HS_REAL(type, name)         \
  static std::atomic<void*> slot{}; \
  auto real = Real<type>(&slot, name)

void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

using FunctorRun = void (*)(grpc_completion_queue_functor*, int);

// The StaticRun of grpcpp's two callback tag classes, as the program uses them (inline functions:
// the executable's copy, which -rdynamic exports and libgrpc++ binds to). Null when this program
// never uses that class.
struct TagRuns {
  FunctorRun success = reinterpret_cast<FunctorRun>(RealSymbol(
      RTLD_DEFAULT,
      "_ZN4grpc8internal22CallbackWithSuccessTag9StaticRunEP29grpc_completion_queue_functori",
      false));
  FunctorRun status = reinterpret_cast<FunctorRun>(RealSymbol(
      RTLD_DEFAULT,
      "_ZN4grpc8internal21CallbackWithStatusTag9StaticRunEP29grpc_completion_queue_functori",
      false));
};

const TagRuns& Runs() {
  static const TagRuns runs;
  return runs;
}

void SuccessTrampoline(grpc_completion_queue_functor* tag, int ok) {
  Acquire(tag);
  Runs().success(tag, ok);
}

void StatusTrampoline(grpc_completion_queue_functor* tag, int ok) {
  Acquire(tag);
  Runs().status(tag, ok);
}

// If `tag` is a callback-API tag, routes its completion through a trampoline. Tags of the other
// completion-queue kinds are objects too (grpcpp's CallOpSets, libgrpc++'s internal tags: a
// vtable pointer first), never equal to a StaticRun, so reading the first word is safe.
void RouteThroughTrampoline(void* tag) {
  const auto addr = reinterpret_cast<uintptr_t>(tag);
  if (addr < 4096 || addr % alignof(void*) != 0) return;
  auto* functor = static_cast<grpc_completion_queue_functor*>(tag);
  const TagRuns& runs = Runs();
  if (runs.success != nullptr && functor->functor_run == runs.success) {
    functor->functor_run = &SuccessTrampoline;
  } else if (runs.status != nullptr && functor->functor_run == runs.status) {
    functor->functor_run = &StatusTrampoline;
  }
}

// Release on (or acquire on) the first byte of each slice of a message.
template <typename F>
void ForEachPayload(const grpc_byte_buffer* bb, F f) {
  if (bb == nullptr || bb->type != GRPC_BB_RAW) return;
  const grpc_slice_buffer& sb = bb->data.raw.slice_buffer;
  for (size_t i = 0; i < sb.count; ++i) {
    if (GRPC_SLICE_LENGTH(sb.slices[i]) > 0) f(GRPC_SLICE_START_PTR(sb.slices[i]));
  }
}

}  // namespace

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops,
                                      void* tag, void* reserved) {
  HS_REAL(grpc_call_error (*)(grpc_call*, const grpc_op*, size_t, void*, void*),
          "grpc_call_start_batch");
  for (size_t i = 0; i < nops; ++i) {
    if (ops[i].op == GRPC_OP_SEND_MESSAGE) {
      ForEachPayload(ops[i].data.send_message.send_message, Release);
    }
  }
  if (tag != nullptr) {
    RouteThroughTrampoline(tag);
    Release(tag);
  }
  return real(call, ops, nops, tag, reserved);
}

int grpc_byte_buffer_reader_peek(grpc_byte_buffer_reader* reader, grpc_slice** slice) {
  HS_REAL(int (*)(grpc_byte_buffer_reader*, grpc_slice**), "grpc_byte_buffer_reader_peek");
  const int r = real(reader, slice);
  if (r != 0 && GRPC_SLICE_LENGTH(**slice) > 0) Acquire(GRPC_SLICE_START_PTR(**slice));
  return r;
}

int grpc_byte_buffer_reader_next(grpc_byte_buffer_reader* reader, grpc_slice* slice) {
  HS_REAL(int (*)(grpc_byte_buffer_reader*, grpc_slice*), "grpc_byte_buffer_reader_next");
  const int r = real(reader, slice);
  if (r != 0 && GRPC_SLICE_LENGTH(*slice) > 0) Acquire(GRPC_SLICE_START_PTR(*slice));
  return r;
}

}  // extern "C"

namespace grpc::internal {

// The thread that takes the call's last reference runs (or schedules) OnDone. The references
// are dropped with acq_rel decrements of callbacks_outstanding_, visible to TSan when done in
// inline code (our reactions' plumbing), invisible when done inside libgrpc++ (its ServerContext
// CompletionOp): acquire on the counter, so this thread holds what every decrementer did.
void ServerCallbackCall::ScheduleOnDone(bool inline_ondone) {
  HS_REAL(void (*)(ServerCallbackCall*, bool),
          "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
  Acquire(&callbacks_outstanding_);
  Release(reactor());
  real(this, inline_ondone);
}

// Likewise for OnCancel and on_cancel_conditions_remaining_.
void ServerCallbackCall::CallOnCancel(ServerReactor* reactor) {
  HS_REAL(void (*)(ServerCallbackCall*, ServerReactor*),
          "_ZN4grpc8internal18ServerCallbackCall12CallOnCancelEPNS0_13ServerReactorE");
  Acquire(&on_cancel_conditions_remaining_);
  Release(reactor);
  real(this, reactor);
}

void ClientReactor::InternalScheduleOnDone(grpc::Status s) {
  HS_REAL(void (*)(ClientReactor*, grpc::Status),
          "_ZN4grpc8internal13ClientReactor22InternalScheduleOnDoneENS_6StatusE");
  Release(this);
  real(this, std::move(s));
}

}  // namespace grpc::internal

namespace grpc {

// Each callback call holds a reference on the server, dropped (in libgrpc++) after its OnDone
// and the call's cleanup; Shutdown waits for the last one. Release on the counter with each drop,
// acquire once the wait is over: whatever the calls did happens before Shutdown returns and the
// services are destroyed.
void Server::UnrefWithPossibleNotify() {
  HS_REAL(void (*)(Server*), "_ZN4grpc6Server23UnrefWithPossibleNotifyEv");
  Release(&shutdown_refs_outstanding_);
  real(this);
}

void Server::UnrefAndWaitLocked() {
  HS_REAL(void (*)(Server*), "_ZN4grpc6Server18UnrefAndWaitLockedEv");
  real(this);
  Acquire(&shutdown_refs_outstanding_);
}

}  // namespace grpc
