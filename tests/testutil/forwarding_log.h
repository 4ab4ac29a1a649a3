// A storage::Log that forwards every call to a real log it owns. Test doubles derive from it
// and override only what they change (HoldingLog holds appends, hub_gap_test's HidingLog hides
// commits), so a new Log method needs one forwarder here, not one per double.
#ifndef HOOKSTREAM_TESTS_TESTUTIL_FORWARDING_LOG_H_
#define HOOKSTREAM_TESTS_TESTUTIL_FORWARDING_LOG_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/storage/log.h"

namespace hookstream::testing {

class ForwardingLog : public storage::Log {
 public:
  explicit ForwardingLog(std::unique_ptr<storage::Log> inner) : inner_(std::move(inner)) {}

  storage::Log& inner() { return *inner_; }

  const std::string& log_id() const override { return inner_->log_id(); }
  const std::string& token_key() const override { return inner_->token_key(); }
  void SetCommitListener(storage::CommitListener* listener) override {
    inner_->SetCommitListener(listener);
  }
  void Append(std::vector<v1::EventInput> events, storage::AppendCallback done) override {
    inner_->Append(std::move(events), std::move(done));
  }
  absl::StatusOr<storage::ReadChunk> Read(Position after, const storage::ReadLimits& limits,
                                          storage::ReadFilter filter) const override {
    return inner_->Read(after, limits, filter);
  }
  absl::StatusOr<std::unique_ptr<storage::SnapshotReader>> OpenLastPerStream(
      absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const override {
    return inner_->OpenLastPerStream(stream_filter);
  }
  absl::StatusOr<v1::StreamInfo> GetStream(absl::string_view stream) const override {
    return inner_->GetStream(stream);
  }
  absl::StatusOr<std::vector<v1::StreamInfo>> ListStreams(
      absl::string_view start_after, size_t limit, absl::FunctionRef<bool(absl::string_view)> keep,
      bool* more) const override {
    return inner_->ListStreams(start_after, limit, keep, more);
  }
  storage::LogStats Stats() const override { return inner_->Stats(); }
  Position head() const override { return inner_->head(); }
  Position AwaitHead(Position position, absl::Duration timeout) const override {
    return inner_->AwaitHead(position, timeout);
  }
  Position trimmed_through() const override { return inner_->trimmed_through(); }
  absl::StatusOr<Position> FindByTime(absl::Time t) const override { return inner_->FindByTime(t); }
  absl::StatusOr<uint64_t> Trim() override { return inner_->Trim(); }
  absl::Status WriteMeta(std::vector<storage::MetaWrite> writes) override {
    return inner_->WriteMeta(std::move(writes));
  }
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key) const override {
    return inner_->GetMeta(key);
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      absl::string_view prefix, absl::string_view start_after, size_t limit) const override {
    return inner_->ScanMeta(prefix, start_after, limit);
  }
  void Close() override { inner_->Close(); }

 protected:
  const std::unique_ptr<storage::Log> inner_;
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_TESTUTIL_FORWARDING_LOG_H_
