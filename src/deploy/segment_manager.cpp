#include "deploy/segment_manager.h"

#include <openssl/rand.h>

#include <algorithm>

#include "common/error.h"

namespace scission::deploy {

std::string RandomSegmentId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) throw Internal("no random bytes for a segment id");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

bool IsSegmentId(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

SegmentManager::Usage SegmentManager::InUse() {
  Usage usage;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (auto s = it->second.lock()) {
      usage.bytes += s->bytes;
      usage.threads += s->threads;
      ++it;
    } else {
      it = sessions_.erase(it);
    }
  }
  for (const auto& [key, pending] : preparing_) {
    usage.bytes += pending.reserved.bytes;
    usage.threads += pending.reserved.threads;
  }
  return usage;
}

void SegmentManager::Reserve(const SegmentKey& key, int64_t bytes, int threads) {
  if (bytes > limits_.max_session_bytes)
    throw BadInput("segment {}..{} needs about {} MB; this worker's segment budget is {} MB",
                   key.first_block, key.last_block, bytes >> 20, limits_.max_session_bytes >> 20);
  if (threads > limits_.max_total_threads)
    throw BadInput("segment {}..{} wants {} threads; this worker allows {} in all", key.first_block,
                   key.last_block, threads, limits_.max_total_threads);
  auto fits = [&] {
    Usage u = InUse();
    return u.bytes + bytes <= limits_.max_session_bytes &&
           u.threads + threads <= limits_.max_total_threads;
  };
  // Least recently used entries go first; a session stays while another entry or an Infer in
  // flight still holds it, so this may need several entries.
  while (!fits() && !entries_.empty()) {
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; });
    entries_.erase(oldest);
  }
  if (!fits())
    throw BadInput(
        "worker busy: the segments in use leave no room for segment {}..{} ({} MB, {} threads); "
        "retry later",
        key.first_block, key.last_block, bytes >> 20, threads);
}

std::shared_ptr<PreparedSession> SegmentManager::Session(
    const SegmentKey& key, int64_t bytes, int threads,
    const std::function<std::unique_ptr<runtime::Session>()>& create) {
  std::promise<std::shared_ptr<PreparedSession>> promise;
  std::shared_future<std::shared_ptr<PreparedSession>> future;
  bool creator = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = sessions_.find(key); it != sessions_.end())
      if (auto existing = it->second.lock()) return existing;
    if (auto it = preparing_.find(key); it != preparing_.end()) {
      future = it->second.future;
    } else {
      Reserve(key, bytes, threads);
      future = promise.get_future().share();
      preparing_[key] = Pending{future, Usage{bytes, threads}};
      creator = true;
    }
  }
  if (!creator) return future.get();
  std::shared_ptr<PreparedSession> prepared;
  try {
    prepared = std::make_shared<PreparedSession>();
    prepared->session = create();
    prepared->bytes = bytes;
    prepared->threads = threads;
  } catch (...) {
    promise.set_exception(std::current_exception());
    std::lock_guard<std::mutex> lock(mutex_);
    preparing_.erase(key);
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_[key] = prepared;
    preparing_.erase(key);
  }
  promise.set_value(prepared);
  return prepared;
}

std::shared_ptr<const SegmentEntry> SegmentManager::Add(SegmentEntry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  while (static_cast<int>(entries_.size()) >= limits_.max_segments) {
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; });
    entries_.erase(oldest);
  }
  entry.id = RandomSegmentId();
  auto shared = std::make_shared<const SegmentEntry>(std::move(entry));
  entries_[shared->id] = Slot{shared, ++clock_};
  return shared;
}

std::shared_ptr<const SegmentEntry> SegmentManager::Find(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  it->second.last_used = ++clock_;
  return it->second.entry;
}

bool SegmentManager::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.erase(id) > 0;
}

size_t SegmentManager::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace scission::deploy
