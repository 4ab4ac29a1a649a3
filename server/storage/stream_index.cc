#include "server/storage/stream_index.h"

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/write_batch.h"
#include "server/storage/event_codec.h"
#include "server/storage/retention.h"

namespace hookstream::storage {
namespace {

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// Index entries written per batch while rebuilding: bounds memory on a large log.
constexpr size_t kRebuildBatch = 16 * 1024;

}  // namespace

absl::StatusOr<std::optional<uint64_t>> ReadIndexGap(rocksdb::DB* db,
                                                     rocksdb::ColumnFamilyHandle* meta_cf) {
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta_cf, kIndexGapKey, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("reading the index gap: ", s.ToString()));
  uint64_t from;
  if (!DecodeBigEndian64(value, &from)) {
    return absl::DataLossError("the stream index gap record is corrupt");
  }
  return from;
}

absl::StatusOr<uint64_t> RebuildStreamIndex(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta_cf,
                                            rocksdb::ColumnFamilyHandle* log_cf,
                                            rocksdb::ColumnFamilyHandle* index_cf,
                                            uint64_t from) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, log_cf));
  rocksdb::WriteBatch batch;
  uint64_t indexed = 0;
  auto flush = [&](bool last) -> absl::Status {
    if (last) {
      rocksdb::Status d = batch.Delete(meta_cf, kIndexGapKey);
      if (!d.ok()) return absl::UnavailableError(d.ToString());
    }
    rocksdb::WriteOptions wo;
    wo.sync = last;  // The gap record goes only once every entry before it is durable.
    rocksdb::Status s = db->Write(wo, &batch);
    batch.Clear();
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("rebuilding the stream index: ", s.ToString()));
    }
    return absl::OkStatus();
  };
  for (it->Seek(EncodeBigEndian64(from)); it->Valid(); it->Next()) {
    uint64_t pos;
    RoutingFields rf;
    const absl::string_view value = View(it->value());
    if (!DecodeBigEndian64(View(it->key()), &pos) || !ScanRoutingFields(value, &rf)) {
      return absl::DataLossError(
          absl::StrCat("rebuilding the stream index: the event after position ", from,
                       " with key ", absl::CHexEscape(View(it->key())), " is corrupt"));
    }
    rocksdb::Status s = batch.Put(index_cf, IndexKey(rf.stream, rf.seq),
                                  EncodeIndexValue(pos, value.size()));
    if (!s.ok()) return absl::UnavailableError(s.ToString());
    if (++indexed % kRebuildBatch == 0) {
      if (absl::Status f = flush(false); !f.ok()) return f;
    }
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(
        absl::StrCat("rebuilding the stream index: ", it->status().ToString()));
  }
  if (absl::Status f = flush(true); !f.ok()) return f;
  return indexed;
}

}  // namespace hookstream::storage
