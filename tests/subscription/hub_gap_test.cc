// The hub when committed positions jump (DESIGN §3.7): a shared log (the JetStream backend)
// can delete events before this server's tailer delivered them, so the hub's next commit
// starts past its head. Live sessions must not skip those events silently: they end with
// UNAVAILABLE, and resuming from their tokens reports the expiry (OUT_OF_RANGE, or a gap with
// EXPIRED_RESTART_FROM_OLDEST). The ring is cleared, so nothing is served across the hole.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/storage/embedded_log.h"
#include "server/subscription/hub.h"
#include "server/subscription/session.h"
#include "tests/testutil/forwarding_log.h"

namespace hookstream::subscription {
namespace {

constexpr absl::Duration kWait = absl::Seconds(30);

// An embedded log whose commits reach the hub as a JetStream tailer's would after events were
// deleted behind its back: while hiding, commits are withheld from the hub and the retention
// horizon covers them (the tailer raises it before it hands over what follows the hole).
class HidingLog : public testing::ForwardingLog, public storage::CommitListener {
 public:
  explicit HidingLog(std::unique_ptr<storage::Log> inner) : ForwardingLog(std::move(inner)) {}
  ~HidingLog() override { inner_->Close(); }

  void Hide(bool hide) {
    absl::MutexLock l(&mu_);
    hiding_ = hide;
  }

  void OnCommit(std::vector<storage::StoredEvent>& events, Position head) override {
    storage::CommitListener* hub;
    {
      absl::MutexLock l(&mu_);
      if (hiding_) {
        horizon_ = head;
        return;
      }
      hub = hub_;
    }
    if (hub != nullptr) hub->OnCommit(events, head);
  }

  void SetCommitListener(storage::CommitListener* listener) override {
    {
      absl::MutexLock l(&mu_);
      hub_ = listener;
    }
    inner_->SetCommitListener(this);
  }
  storage::LogStats Stats() const override {
    storage::LogStats stats = inner_->Stats();
    stats.trimmed_through = trimmed_through();
    return stats;
  }
  Position trimmed_through() const override {
    absl::MutexLock l(&mu_);
    return horizon_;
  }
  absl::StatusOr<uint64_t> Trim() override { return uint64_t{0}; }

 private:
  mutable absl::Mutex mu_;
  storage::CommitListener* hub_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool hiding_ ABSL_GUARDED_BY(mu_) = false;
  Position horizon_ ABSL_GUARDED_BY(mu_);
};

// Drives a session as the gRPC transport does: Next() until it says to wait, then wait for
// the wake.
class Reader : public Waker {
 public:
  explicit Reader(std::shared_ptr<Session> session) : session_(std::move(session)) {
    session_->Attach(this);
  }
  ~Reader() override {
    session_->Cancel();
    session_->Detach();
  }
  void Ref() override {}
  void WakeAndUnref() override {
    absl::MutexLock l(&mu_);
    ++wakes_;
  }

  // Reads until `done` holds for what was received, or the session finishes, or kWait passes.
  struct Received {
    std::vector<v1::DeliveredEvent> events;
    std::vector<v1::Gap> gaps;
    int caught_up = 0;  // Sent when the session joins the live set.
    std::optional<absl::Status> finished;
  };
  const Received& ReadUntil(const std::function<bool(const Received&)>& done) {
    const absl::Time deadline = absl::Now() + kWait;
    while (!done(got_) && !got_.finished && absl::Now() < deadline) {
      int wakes;
      {
        absl::MutexLock l(&mu_);
        wakes = wakes_;
      }
      Session::Step step = session_->Next();
      if (auto* msg = std::get_if<std::string>(&step)) {
        v1::SubscribeResponse r;
        EXPECT_TRUE(r.ParseFromString(*msg));
        for (const auto& e : r.events().events()) got_.events.push_back(e);
        if (r.has_gap()) got_.gaps.push_back(r.gap());
        if (r.has_caught_up()) ++got_.caught_up;
      } else if (auto* fin = std::get_if<Session::Finish>(&step)) {
        got_.finished = fin->status;
      } else {
        absl::MutexLock l(&mu_);
        auto woken = [this, wakes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wakes_ != wakes; };
        mu_.AwaitWithDeadline(absl::Condition(&woken), deadline);
      }
    }
    return got_;
  }

 private:
  std::shared_ptr<Session> session_;
  absl::Mutex mu_;
  int wakes_ ABSL_GUARDED_BY(mu_) = 0;
  Received got_;
};

class HubGapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hub_gap_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    storage::EmbeddedLogOptions o;
    o.data_dir = dir_;
    absl::StatusOr<std::unique_ptr<storage::Log>> inner = storage::OpenEmbeddedLog(o);
    ASSERT_TRUE(inner.ok()) << inner.status();
    log_ = std::make_unique<HidingLog>(*std::move(inner));
    hub_ = std::make_unique<Hub>(log_.get(), HubOptions());
  }
  void TearDown() override {
    if (hub_ != nullptr) {
      hub_->Shutdown();
      hub_->WaitUntilNoSessions(kWait);
    }
    hub_.reset();
    log_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Publish(absl::string_view stream, int n) {
    std::vector<v1::EventInput> events;
    for (int i = 0; i < n; ++i) {
      v1::EventInput e;
      e.set_stream(std::string(stream));
      e.set_type("t");
      e.set_source("test");
      e.set_id(absl::StrCat(stream, "-", next_id_++));
      events.push_back(std::move(e));
    }
    absl::Notification done;
    log_->Append(std::move(events), [&](absl::StatusOr<v1::PublishResponse> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  }

  std::string dir_;
  std::unique_ptr<HidingLog> log_;
  std::unique_ptr<Hub> hub_;
  int next_id_ = 0;
};

TEST_F(HubGapTest, ALiveSessionEndsUnavailableAndItsTokenReportsTheDeletedEvents) {
  Publish("a", 2);  // Positions 1, 2.
  v1::SubscribeRequest from_start;
  from_start.set_from(v1::SubscribeRequest::START_BEGINNING);
  absl::StatusOr<std::shared_ptr<Session>> s = hub_->Subscribe(from_start);
  ASSERT_TRUE(s.ok()) << s.status();
  Reader live(*s);
  const auto& before =
      live.ReadUntil([](const auto& r) { return r.events.size() >= 2 && r.caught_up > 0; });
  ASSERT_EQ(before.events.size(), 2u);
  ASSERT_EQ(before.caught_up, 1) << "the session must be live (fed from commits)";
  const std::string token = before.events.back().resume_token();

  // The live session is fed from commits; 3 and 4 never reach the hub, 5 does.
  log_->Hide(true);
  Publish("a", 2);
  log_->Hide(false);
  Publish("a", 1);
  const auto& after = live.ReadUntil([](const auto&) { return false; });
  ASSERT_TRUE(after.finished.has_value()) << "the live session must not go on past the hole";
  EXPECT_EQ(after.finished->code(), absl::StatusCode::kUnavailable) << *after.finished;
  EXPECT_EQ(after.events.size(), 2u) << "nothing delivered across the hole";

  // Resuming from the last token: the events in between are reported, never skipped.
  v1::SubscribeRequest resume;
  resume.set_resume_token(token);
  absl::StatusOr<std::shared_ptr<Session>> expired = hub_->Subscribe(resume);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kOutOfRange) << expired.status();

  resume.set_on_expired(v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST);
  absl::StatusOr<std::shared_ptr<Session>> restarted = hub_->Subscribe(resume);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  Reader again(*restarted);
  const auto& got = again.ReadUntil([](const auto& r) { return !r.events.empty(); });
  ASSERT_EQ(got.gaps.size(), 1u);
  EXPECT_EQ(got.gaps[0].from_position(), 2u);  // Events in (2, 4] are gone.
  EXPECT_EQ(got.gaps[0].to_position(), 4u);
  ASSERT_EQ(got.events.size(), 1u);
  EXPECT_EQ(got.events[0].event().position(), 5u);

  // Live delivery goes on after the hole: a new commit reaches the resumed session.
  Publish("a", 1);
  const auto& more = again.ReadUntil([](const auto& r) { return r.events.size() >= 2; });
  ASSERT_EQ(more.events.size(), 2u);
  EXPECT_EQ(more.events[1].event().position(), 6u);
  EXPECT_FALSE(more.finished.has_value());
}

}  // namespace
}  // namespace hookstream::subscription
