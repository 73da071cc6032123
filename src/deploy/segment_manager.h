// A worker's loaded segments. A segment entry is what LoadSegment returns an id for: a prepared
// session plus where its outputs go next. Sessions are shared by entries with the same model,
// block range and threads, and created once however many callers ask at the same time, outside
// the lock that Infer's lookups take. Everything is bounded: entries by count, sessions by their
// estimated bytes and by the threads they own; when a new session does not fit, the least
// recently used entries are dropped (their ids then answer "not loaded": load again), and a
// session that alone exceeds the budget is refused. A session in use by an Infer lives until that
// call ends even when its entry is dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/backend.h"

namespace grpc {
class Channel;
}

namespace scission::deploy {

struct SegmentLimits {
  int max_segments = 64;                  // entries (ids)
  int64_t max_session_bytes = 4LL << 30;  // sum of the sessions' estimated bytes
  int max_total_threads = 32;             // sum of the sessions' intra-op threads
};

struct SegmentKey {
  std::string sha256;
  int first_block = 0, last_block = 0, threads = 0;
  std::string partition;  // whose blocks the indices count (graph::PartitionFingerprint)
  auto Tie() const { return std::tie(sha256, first_block, last_block, threads, partition); }
  bool operator<(const SegmentKey& o) const { return Tie() < o.Tie(); }
};

struct PreparedSession {
  std::unique_ptr<runtime::Session> session;
  int64_t bytes = 0;  // estimate: the segment's serialized size (its weights)
  int threads = 0;    // intra-op threads it owns
};

struct SegmentEntry {
  std::string id;
  SegmentKey key;
  std::shared_ptr<PreparedSession> prepared;
  std::string next_address;  // empty: outputs go back to the caller
  std::string next_segment_id;
  std::shared_ptr<grpc::Channel> next_channel;
  std::string output_codec = "none";  // how its outputs travel (LoadSegmentRequest.output_codec)
};

class SegmentManager {
 public:
  explicit SegmentManager(SegmentLimits limits) : limits_(limits) {}
  const SegmentLimits& limits() const { return limits_; }

  // Returns the session for `key`. When none exists, makes room for `bytes` and `threads` (evicting
  // least recently used entries), then calls `create` outside the lock, once for concurrent
  // callers. BadInput when the session cannot fit within the limits.
  std::shared_ptr<PreparedSession> Session(
      const SegmentKey& key, int64_t bytes, int threads,
      const std::function<std::unique_ptr<runtime::Session>()>& create);
  // Registers a new entry with a fresh random id and returns it.
  std::shared_ptr<const SegmentEntry> Add(SegmentEntry entry);
  // nullptr when the id is unknown (never loaded, unloaded or evicted).
  std::shared_ptr<const SegmentEntry> Find(const std::string& id);
  bool Remove(const std::string& id);
  size_t size();

 private:
  struct Slot {
    std::shared_ptr<const SegmentEntry> entry;
    uint64_t last_used = 0;
  };
  struct Usage {
    int64_t bytes = 0;
    int threads = 0;
  };
  // Sessions still referenced by an entry or an Infer in flight, plus those being created.
  Usage InUse();
  void Reserve(const SegmentKey& key, int64_t bytes, int threads);

  SegmentLimits limits_;
  std::mutex mutex_;
  std::map<std::string, Slot> entries_;
  std::map<SegmentKey, std::weak_ptr<PreparedSession>> sessions_;
  struct Pending {
    std::shared_future<std::shared_ptr<PreparedSession>> future;
    Usage reserved;
  };
  std::map<SegmentKey, Pending> preparing_;
  uint64_t clock_ = 0;
};

// 32 lowercase hex digits from a cryptographic random source: ids cannot be guessed.
std::string RandomSegmentId();
bool IsSegmentId(const std::string& text);

}  // namespace scission::deploy
