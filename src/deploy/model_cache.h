// A worker's models: files in its cache directory named by SHA-256, and the parsed, analysed
// models in memory. Uploads stream to a unique temporary file while hashing, so memory per upload
// is one chunk until the finished file is verified. A model is loaded (parsed, analysed, shapes
// probed) once however many callers ask for it at the same time, outside any lock that inference
// takes. Both levels are bounded: files by total bytes (least recently used files go first),
// loaded models by count. Errors name models by hash, never by path: callers are remote.
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/cancel.h"
#include "graph/analysis.h"
#include "graph/model.h"

namespace scission::deploy {

struct CachedModel {
  graph::LoadedModel model;
  graph::GraphAnalysis analysis;
  std::string partition;  // graph::PartitionFingerprint(analysis)
  // Why the shape probe at the declared shapes (dynamic dimensions as 1) failed, else "": such a
  // model's tensor types are learnt at the shapes a caller sends.
  std::string probe_error;
};

bool IsSha256Hex(const std::string& text);

struct ModelCacheLimits {
  int64_t max_model_bytes = (2LL << 30) - 1;  // protobuf cannot parse more
  int64_t max_disk_bytes = 16LL << 30;
  int max_loaded = 4;
};

class ModelCache {
 public:
  ModelCache(std::string dir, ModelCacheLimits limits);
  const ModelCacheLimits& limits() const { return limits_; }

  bool Has(const std::string& sha256) const;

  // One upload in progress: Append() chunks, then Commit() verifies size, hash and the model
  // itself (refusing anything a network peer must not send, e.g. external data) and moves it into
  // the cache. Destroying an uncommitted upload removes its temporary file.
  class Upload {
   public:
    ~Upload();
    void Append(const std::string& bytes);  // BadInput beyond the announced size
    void Commit();

   private:
    friend class ModelCache;
    Upload(ModelCache* cache, std::string sha256, int64_t total_bytes);
    ModelCache* cache_;
    std::string sha256_;
    int64_t total_ = 0, received_ = 0;
    std::string tmp_path_;
    int fd_ = -1;
    struct Hash;
    std::unique_ptr<Hash> hash_;
  };
  // BadInput for a bad hash or a size outside 1..max_model_bytes or above the disk budget.
  std::unique_ptr<Upload> BeginUpload(const std::string& sha256, int64_t total_bytes);

  // The loaded model; loads it at most once at a time. BadInput when it is not cached. Loading
  // may run the model once (the shape probe); a cancelled `cancel` stops that run, and callers
  // waiting on the same load then get the same error (a later call loads again).
  std::shared_ptr<const CachedModel> Get(const std::string& sha256, CancelToken* cancel = nullptr);

 private:
  std::string PathOf(const std::string& sha256) const;
  void EvictFiles(int64_t incoming_bytes);
  std::shared_ptr<const CachedModel> Load(const std::string& sha256, CancelToken* cancel) const;

  std::string dir_;
  ModelCacheLimits limits_;
  std::mutex files_mutex_;  // commits and file eviction
  std::mutex mutex_;        // the maps below
  struct Slot {
    std::shared_future<std::shared_ptr<const CachedModel>> future;
    uint64_t last_used = 0;
  };
  std::map<std::string, Slot> loaded_;
  uint64_t clock_ = 0;
};

}  // namespace scission::deploy
