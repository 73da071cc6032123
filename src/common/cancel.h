// Cooperative cancellation: whoever starts long work (a worker's handler, a benchmark) hands the
// work a token; whoever may stop it (a watchdog seeing the caller go away or its deadline pass)
// cancels the token. Work checks cancelled() between steps and registers a stop callback for the
// step it cannot interrupt itself (an ONNX Runtime Run()). Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace scission {

class CancelToken {
 public:
  // Idempotent; the first call runs every registered stop callback once.
  void Cancel(const std::string& reason);
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  std::string reason() const;
  // BadInput "<what>: cancelled (<reason>)" when cancelled.
  void ThrowIfCancelled(const std::string& what) const;

  // Calls `stop` when the token is cancelled (at once if it already is) while the registration
  // lives. The callback runs on the cancelling thread under the token's lock: it must be quick,
  // thread-safe and must not call back into the token.
  class Registration {
   public:
    Registration() = default;
    Registration(CancelToken* token, int id) : token_(token), id_(id) {}
    Registration(Registration&& other) noexcept { *this = std::move(other); }
    Registration& operator=(Registration&& other) noexcept;
    ~Registration();

   private:
    CancelToken* token_ = nullptr;
    int id_ = 0;
  };
  [[nodiscard]] Registration OnCancel(std::function<void()> stop);

 private:
  void Remove(int id);

  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::string reason_;
  std::map<int, std::function<void()>> callbacks_;
  int next_id_ = 1;
};

}  // namespace scission
