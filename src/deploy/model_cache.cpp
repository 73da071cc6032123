#include "deploy/model_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "graph/partition.h"
#include "profile/shapes.h"

namespace scission::deploy {

namespace fs = std::filesystem;

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

namespace {
std::string ShortName(const std::string& sha256) { return "model " + sha256.substr(0, 12); }
}  // namespace

struct ModelCache::Upload::Hash {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Hash() { EVP_MD_CTX_free(ctx); }
};

ModelCache::ModelCache(std::string dir, ModelCacheLimits limits)
    : dir_(std::move(dir)), limits_(limits) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw BadInput("{}: cannot create the model cache: {}", dir_, ec.message());
  // Temporary files of uploads a killed worker never finished.
  for (const auto& entry : fs::directory_iterator(dir_, ec))
    if (entry.path().filename().string().rfind(".upload-", 0) == 0) fs::remove(entry.path(), ec);
}

std::string ModelCache::PathOf(const std::string& sha256) const {
  return dir_ + "/" + sha256 + ".onnx";
}

bool ModelCache::Has(const std::string& sha256) const {
  std::error_code ec;
  return IsSha256Hex(sha256) && fs::is_regular_file(PathOf(sha256), ec);
}

std::unique_ptr<ModelCache::Upload> ModelCache::BeginUpload(const std::string& sha256,
                                                            int64_t total_bytes) {
  if (!IsSha256Hex(sha256)) throw BadInput("sha256 must be 64 lowercase hex digits");
  const int64_t limit = std::min(limits_.max_model_bytes, limits_.max_disk_bytes);
  if (total_bytes < 1 || total_bytes > limit)
    throw BadInput("model size must be 1 byte .. {} bytes, got {}", limit, total_bytes);
  return std::unique_ptr<Upload>(new Upload(this, sha256, total_bytes));
}

ModelCache::Upload::Upload(ModelCache* cache, std::string sha256, int64_t total_bytes)
    : cache_(cache), sha256_(std::move(sha256)), total_(total_bytes), hash_(new Hash) {
  tmp_path_ = cache_->dir_ + "/.upload-XXXXXX";
  fd_ = ::mkstemp(tmp_path_.data());
  if (fd_ < 0)
    throw Internal("model cache: cannot create a temporary file: {}", std::strerror(errno));
  if (!hash_->ctx || EVP_DigestInit_ex(hash_->ctx, EVP_sha256(), nullptr) != 1)
    throw Internal("SHA-256 failed");
}

ModelCache::Upload::~Upload() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

void ModelCache::Upload::Append(const std::string& bytes) {
  if (received_ + static_cast<int64_t>(bytes.size()) > total_)
    throw BadInput("{}: chunks exceed the announced size of {} bytes", ShortName(sha256_), total_);
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Internal("model cache: write failed: {}", std::strerror(errno));
    written += static_cast<size_t>(n);
  }
  EVP_DigestUpdate(hash_->ctx, bytes.data(), bytes.size());
  received_ += static_cast<int64_t>(bytes.size());
}

void ModelCache::Upload::Commit() {
  if (received_ != total_)
    throw BadInput("{}: truncated in transfer ({} of {} bytes)", ShortName(sha256_), received_,
                   total_);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(hash_->ctx, digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  if (hex != sha256_) throw BadInput("{}: bytes do not match their sha256", ShortName(sha256_));
  ::fchmod(fd_, 0644);
  ::close(fd_);
  fd_ = -1;
  std::lock_guard<std::mutex> lock(cache_->files_mutex_);
  // Verified before it becomes visible: what a later LoadSegment parses has passed the same
  // checks (ONNX checker, no external data, bounded nesting).
  graph::ParseModel(ReadFileBytes(tmp_path_), ShortName(sha256_));
  cache_->EvictFiles(total_);
  if (::rename(tmp_path_.c_str(), cache_->PathOf(sha256_).c_str()) != 0)
    throw Internal("model cache: cannot store {}: {}", ShortName(sha256_), std::strerror(errno));
  tmp_path_.clear();
}

void ModelCache::EvictFiles(int64_t incoming_bytes) {
  struct File {
    fs::path path;
    fs::file_time_type time;
    int64_t bytes;
  };
  std::vector<File> files;
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || !name.ends_with(".onnx")) continue;
    File f{entry.path(), entry.last_write_time(ec), static_cast<int64_t>(entry.file_size(ec))};
    total += f.bytes;
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.time < b.time; });
  for (const auto& f : files) {
    if (total + incoming_bytes <= limits_.max_disk_bytes) break;
    fs::remove(f.path, ec);
    if (!ec) total -= f.bytes;
  }
  if (total + incoming_bytes > limits_.max_disk_bytes)
    throw BadInput("the worker's model cache is full ({} of {} bytes)", total,
                   limits_.max_disk_bytes);
}

std::shared_ptr<const CachedModel> ModelCache::Load(const std::string& sha256,
                                                    CancelToken* cancel) const {
  std::string bytes;
  try {
    bytes = ReadFileBytes(PathOf(sha256));
  } catch (const Error&) {
    throw BadInput("{} is not cached here; send it with PutModel", ShortName(sha256));
  }
  auto entry = std::make_shared<CachedModel>();
  entry->model = graph::ParseModel(bytes, ShortName(sha256));
  if (entry->model.sha256 != sha256)
    throw BadInput("{}: the cached file is damaged (hash differs); send it again",
                   ShortName(sha256));
  entry->analysis = graph::Analyze(entry->model.proto);
  try {
    profile::ResolveBlockShapes(entry->model, entry->analysis, runtime::kDefaultBackend, cancel);
  } catch (const Error& e) {
    if (cancel && cancel->cancelled()) throw;
    entry->probe_error = e.what();  // a model that only runs at real sizes
  }
  entry->partition = graph::PartitionFingerprint(entry->analysis);
  return entry;
}

std::shared_ptr<const CachedModel> ModelCache::Get(const std::string& sha256, CancelToken* cancel) {
  if (!IsSha256Hex(sha256)) throw BadInput("sha256 must be 64 lowercase hex digits");
  std::shared_future<std::shared_ptr<const CachedModel>> future;
  std::promise<std::shared_ptr<const CachedModel>> promise;
  bool load = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = loaded_.find(sha256);
    if (it == loaded_.end()) {
      if (!Has(sha256))
        throw BadInput("{} is not cached here; send it with PutModel", ShortName(sha256));
      future = promise.get_future().share();
      it = loaded_.emplace(sha256, Slot{future, 0}).first;
      load = true;
    }
    it->second.last_used = ++clock_;
    future = it->second.future;
  }
  if (load) {
    try {
      promise.set_value(Load(sha256, cancel));
    } catch (...) {
      promise.set_exception(std::current_exception());
      std::lock_guard<std::mutex> lock(mutex_);
      loaded_.erase(sha256);  // a later call tries again
    }
    // Keep at most max_loaded models parsed in memory; segments keep their own sessions.
    std::lock_guard<std::mutex> lock(mutex_);
    while (static_cast<int>(loaded_.size()) > limits_.max_loaded) {
      auto oldest = std::min_element(
          loaded_.begin(), loaded_.end(),
          [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; });
      if (oldest->first == sha256) break;
      loaded_.erase(oldest);
    }
    std::error_code ec;
    fs::last_write_time(PathOf(sha256), fs::file_time_type::clock::now(), ec);  // LRU for files
  }
  return future.get();
}

}  // namespace scission::deploy
