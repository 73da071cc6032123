#include "common/cancel.h"

#include "common/error.h"

namespace scission {

void CancelToken::Cancel(const std::string& reason) {
  // Callbacks run under the lock: a Registration being destroyed on another thread waits in
  // Remove() until they are done, so a callback never touches an object that is already gone.
  std::lock_guard<std::mutex> lock(mutex_);
  if (cancelled_.load(std::memory_order_relaxed)) return;
  reason_ = reason;
  cancelled_.store(true, std::memory_order_release);
  for (auto& [id, stop] : callbacks_) stop();
}

std::string CancelToken::reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reason_;
}

void CancelToken::ThrowIfCancelled(const std::string& what) const {
  if (cancelled()) throw BadInput("{}: cancelled ({})", what, reason());
}

CancelToken::Registration CancelToken::OnCancel(std::function<void()> stop) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!cancelled_.load(std::memory_order_relaxed)) {
      int id = next_id_++;
      callbacks_.emplace(id, std::move(stop));
      return Registration(this, id);
    }
  }
  stop();
  return Registration();
}

void CancelToken::Remove(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  callbacks_.erase(id);
}

CancelToken::Registration& CancelToken::Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    if (token_) token_->Remove(id_);
    token_ = other.token_;
    id_ = other.id_;
    other.token_ = nullptr;
  }
  return *this;
}

CancelToken::Registration::~Registration() {
  if (token_) token_->Remove(id_);
}

}  // namespace scission
