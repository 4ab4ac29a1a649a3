// The embedded log's per-stream index, (stream, '\0', seq) -> (position, size), which only
// per-stream retention (max_events_per_stream) reads. Keeping it costs a second memtable
// insert per event, with keys that arrive in no order (~6-11k instructions each, a sixth of a
// group commit's work), so the log keeps it only while that limit is configured. (RocksDB's
// memtable insert hints would make the insert cheap, but 7.8 shares them between point
// entries and range tombstones, which corrupts the memtable once a DeleteRange, live or
// replayed from the WAL, meets a hinted prefix.)
// While the index is not kept, the first commit records the position from which it is
// incomplete (kIndexGapKey, atomically with the events); a later open with the limit set
// rebuilds the index from there by scanning the log, then clears the record. A crash during
// the rebuild leaves the record, and the next open rebuilds again (Puts are idempotent).
//
// Pure functions over the store; the caller owns the thread (the log's Open, before the
// appender starts).
#ifndef HOOKSTREAM_SERVER_STORAGE_STREAM_INDEX_H_
#define HOOKSTREAM_SERVER_STORAGE_STREAM_INDEX_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/db.h"

namespace hookstream::storage {

// Key in the default column family: big-endian position from which index entries may be
// missing. Absent: the index is complete.
inline constexpr char kIndexGapKey[] = "index_gap";

// The recorded gap, if any.
absl::StatusOr<std::optional<uint64_t>> ReadIndexGap(rocksdb::DB* db,
                                                     rocksdb::ColumnFamilyHandle* meta_cf);

// Indexes every retained event at or after `from` and clears the gap record; returns how many
// events it indexed. DATA_LOSS when an event does not parse.
absl::StatusOr<uint64_t> RebuildStreamIndex(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta_cf,
                                            rocksdb::ColumnFamilyHandle* log_cf,
                                            rocksdb::ColumnFamilyHandle* index_cf,
                                            uint64_t from);

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_STREAM_INDEX_H_
