// TSan builds only (HOOKSTREAM_SANITIZE=thread): makes Abseil's synchronization visible to
// ThreadSanitizer.
//
// Debian's libabsl_synchronization.so is compiled without -fsanitize=thread, so TSan cannot see
// that absl::Mutex, absl::CondVar and absl::Notification order memory: every handoff through them
// (ours, and gRPC's, whose grpc_core::Mutex/CondVar are absl's) looks like a data race. This file
// defines the public entry points of those classes in the executable. The dynamic linker binds
// every call to them to these definitions first — from our code, from libgrpc/libgpr, and from
// inside libabsl itself, which calls its own exported functions through the PLT — and each one
// calls the library's real function (found with dlsym(RTLD_NEXT)) and tells TSan about the
// ordering it provides: a release on the object's address before anything that may unlock or
// publish, an acquire after anything that locks or waits; and each evaluation of an Await /
// LockWhen condition, which absl may run on whichever thread holds the lock, is a critical
// section of its own. That is exactly the happens-before absl guarantees, no more, so real races
// in code using these types are still reported.
//
// Inline functions in absl's headers (absl::MutexLock, Notification::HasBeenNotified) are compiled
// into our instrumented code and call into the functions here, except HasBeenNotified, which
// reads the atomic flag directly: Notify releases on the flag's address too so that read pairs.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#define HS_STR2(x) #x
#define HS_STR(x) HS_STR2(x)

namespace {

template <size_t N>
constexpr size_t Len(const char (&)[N]) {
  return N - 1;
}

// The Itanium mangling of absl::<inline namespace>::<rest>: "_ZN4absl7debian35Mutex4LockEv";
// a const member function's `rest` starts with 'K', which goes right after the N.
void* RealSymbol(const char* rest) {
  const char* ns = HS_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const bool is_const = rest[0] == 'K';
  char name[256];
  std::snprintf(name, sizeof(name), "_ZN%s4absl%zu%s%s", is_const ? "K" : "",
                Len(HS_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME)), ns, rest + (is_const ? 1 : 0));
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found in libabsl_synchronization\n", name);
    std::abort();
  }
  return fn;
}

// The real function behind one interposed symbol, resolved on first use.
template <typename Fn>
Fn Real(std::atomic<void*>* slot, const char* rest) {
  void* fn = slot->load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = RealSymbol(rest);
    slot->store(fn, std::memory_order_release);
  }
  return reinterpret_cast<Fn>(fn);
}

#define HS_REAL(type, rest)            \
  static std::atomic<void*> slot{};    \
  auto real = Real<type>(&slot, rest)

void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

// absl::Notification's layout: `mutable Mutex mutex_; std::atomic<bool> notified_yet_;`.
const void* NotifiedFlag(const absl::Notification* n) {
  return reinterpret_cast<const char*>(n) + sizeof(absl::Mutex);
}
static_assert(sizeof(absl::Notification) == sizeof(absl::Mutex) + sizeof(std::atomic<bool>) ||
                  sizeof(absl::Notification) == 2 * sizeof(absl::Mutex),
              "absl::Notification layout changed: revisit NotifiedFlag");

// absl evaluates a waiter's Condition with the mutex held, but not necessarily on the waiter's
// thread: Unlock() on another thread evaluates it to decide whom to wake. So each evaluation is
// wrapped as a critical section of its own: acquire before (it sees what lock holders wrote),
// release after (later holders see what it read). The wrapper itself lives on the waiter's
// stack and reaches the evaluating thread through absl's (uninstrumented) wait queue: the
// waiter releases it once written (HS_WRAP) and Eval acquires it before reading it (found by
// TSan with three threads waiting on one Notification).
struct WrappedCondition {
  const absl::Condition* cond;
  const absl::Mutex* mu;
  static bool Eval(WrappedCondition* w) {
    Acquire(w);
    Acquire(w->mu);
    const bool r = w->cond->Eval();
    Release(w->mu);
    return r;
  }
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

using absl::Condition;

// Declares `wrapped`, a Condition evaluating `cond` as a critical section on `mu`.
#define HS_WRAP(cond, mu)                    \
  WrappedCondition wrap_arg{&(cond), (mu)};  \
  Release(&wrap_arg);                        \
  const Condition wrapped(&WrappedCondition::Eval, &wrap_arg)

void Mutex::Lock() {
  HS_REAL(void (*)(Mutex*), "5Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  HS_REAL(void (*)(Mutex*), "5Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  HS_REAL(bool (*)(Mutex*), "5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  HS_REAL(bool (*)(Mutex*), "5Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  HS_REAL(void (*)(Mutex*), "5Mutex6UnlockEv");
  Release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  HS_REAL(void (*)(Mutex*), "5Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  HS_REAL(void (*)(Mutex*, const Condition&), "5Mutex8LockWhenERKNS0_9ConditionE");
  HS_WRAP(cond, this);
  real(this, wrapped);
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  HS_REAL(void (*)(Mutex*, const Condition&), "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  HS_WRAP(cond, this);
  real(this, wrapped);
  Acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  HS_REAL(bool (*)(Mutex*, const Condition&, Duration),
          "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  HS_WRAP(cond, this);
  const bool r = real(this, wrapped, timeout);
  Acquire(this);  // Locked either way.
  return r;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  HS_REAL(bool (*)(Mutex*, const Condition&, Time),
          "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  HS_WRAP(cond, this);
  const bool r = real(this, wrapped, deadline);
  Acquire(this);
  return r;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  HS_REAL(bool (*)(Mutex*, const Condition&, Duration),
          "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  HS_WRAP(cond, this);
  const bool r = real(this, wrapped, timeout);
  Acquire(this);
  return r;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  HS_REAL(bool (*)(Mutex*, const Condition&, Time),
          "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  HS_WRAP(cond, this);
  const bool r = real(this, wrapped, deadline);
  Acquire(this);
  return r;
}

// Await may unlock and re-lock: release what this thread did, acquire what others did meanwhile.
void Mutex::Await(const Condition& cond) {
  HS_REAL(void (*)(Mutex*, const Condition&), "5Mutex5AwaitERKNS0_9ConditionE");
  HS_WRAP(cond, this);
  Release(this);
  real(this, wrapped);
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  HS_REAL(bool (*)(Mutex*, const Condition&, Duration),
          "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  HS_WRAP(cond, this);
  Release(this);
  const bool r = real(this, wrapped, timeout);
  Acquire(this);
  return r;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  HS_REAL(bool (*)(Mutex*, const Condition&, Time),
          "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  HS_WRAP(cond, this);
  Release(this);
  const bool r = real(this, wrapped, deadline);
  Acquire(this);
  return r;
}

void CondVar::Wait(Mutex* mu) {
  HS_REAL(void (*)(CondVar*, Mutex*), "7CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  HS_REAL(bool (*)(CondVar*, Mutex*, Duration),
          "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool r = real(this, mu, timeout);
  Acquire(mu);
  return r;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  HS_REAL(bool (*)(CondVar*, Mutex*, Time), "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool r = real(this, mu, deadline);
  Acquire(mu);
  return r;
}

void Notification::Notify() {
  HS_REAL(void (*)(Notification*), "12Notification6NotifyEv");
  Release(this);
  Release(NotifiedFlag(this));
  real(this);
}

void Notification::WaitForNotification() const {
  HS_REAL(void (*)(const Notification*), "K12Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  HS_REAL(bool (*)(const Notification*, Duration),
          "K12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  HS_REAL(bool (*)(const Notification*, Time),
          "K12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
