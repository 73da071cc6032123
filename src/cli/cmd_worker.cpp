
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli/common.h"
#include "common/text.h"
#include "deploy/wire.h"
#include "deploy/worker.h"

namespace scission::cli {

namespace {
// Default budget for loaded segments: half of this machine's memory.
int64_t HalfOfMemory() {
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return int64_t{4} << 30;
  return static_cast<int64_t>(pages) * page / 2;
}
}  // namespace

void RegisterWorker(CLI::App& app, GlobalOptions& global) {
  auto* cmd =
      app.add_subcommand("worker", "serve benchmarks and segments to coordinators over gRPC");
  AddGlobalFlags(cmd, global);
  struct Options {
    deploy::WorkerOptions worker;
    std::string token_file, peers;
    int64_t max_segment_mb = -1, max_cache_mb = 16384, max_tensor_mb = 256,
            max_transport_mb = 256;  // -1: automatic
  };
  auto o = std::make_shared<Options>();
  auto& w = o->worker;
  cmd->add_option("--listen", w.listen, "HOST:PORT to listen on")->required();
  cmd->add_option("--resource", w.resource, "this machine's resource name")->required();
  cmd->add_option("--tier", w.tier, "this machine's tier")->required();
  cmd->add_option("--token-file", o->token_file, "file holding the secret callers must present");
  cmd->add_option("--token", w.token,
                  "secret callers must present (visible in the process list: prefer "
                  "--token-file or $SCISSION_TOKEN)");
  cmd->add_option("--tls-cert", w.tls_cert, "PEM certificate (TLS)");
  cmd->add_option("--tls-key", w.tls_key, "PEM private key (TLS)");
  cmd->add_option("--tls-ca", w.tls_ca, "PEM roots for forwarding to TLS workers");
  cmd->add_option("--peers", o->peers,
                  "HOST:PORT,... this worker may forward to (default: workers that prove they "
                  "hold the same token)");
  cmd->add_option("--cache-dir", w.cache_dir, "model cache (default $SCISSION_HOME/worker)");
  cmd->add_option("--threads", w.threads, "intra-op threads for segments (0 = default)");
  cmd->add_option("--max-segments", w.segments.max_segments, "segments loaded at once (64)");
  cmd->add_option("--max-segment-mb", o->max_segment_mb,
                  "memory for loaded segments (default half of this machine's memory)");
  cmd->add_option("--max-cache-mb", o->max_cache_mb, "disk for cached models (16384)");
  cmd->add_option("--max-tensor-mb", o->max_tensor_mb, "largest tensor accepted (256)");
  cmd->add_option("--max-transport-mb", o->max_transport_mb,
                  "memory gRPC may buffer for all connections together (256)");
  cmd->add_option("--max-benchmark-s", w.max_benchmark_s, "a benchmark stops after (900)");
  cmd->callback([o, &global] {
    BlockStopSignals();
    auto& cfg = o->worker;
    cfg.token = deploy::ResolveToken(cfg.token, o->token_file);
    if (!cfg.token.empty() && o->token_file.empty() && std::getenv("SCISSION_TOKEN") == nullptr)
      Note(
          "note: --token is visible to other users in the process list; prefer --token-file or "
          "$SCISSION_TOKEN");
    if (!o->peers.empty()) cfg.peers = SplitCommas(o->peers);
    auto mb = [](int64_t value, const char* flag) {
      if (value < 1 || value > (int64_t{1} << 30)) throw BadInput("{} must be 1..2^30", flag);
      return value << 20;
    };
    cfg.segments.max_session_bytes =
        o->max_segment_mb != -1 ? mb(o->max_segment_mb, "--max-segment-mb") : HalfOfMemory();
    cfg.models.max_disk_bytes = mb(o->max_cache_mb, "--max-cache-mb");
    cfg.max_tensor_bytes = mb(o->max_tensor_mb, "--max-tensor-mb");
    cfg.max_transport_bytes = mb(o->max_transport_mb, "--max-transport-mb");
    cfg.log = [](const std::string& m) { Note("worker: " + m); };
    deploy::WorkerServer server(cfg);
    int port = server.Start();
    if (global.json)
      PrintJson(
          {{"listen", cfg.listen}, {"port", port}, {"resource", cfg.resource}, {"tier", cfg.tier}});
    else
      fmt::print("worker {} (tier {}) listening on {} (port {}){}{}\n", cfg.resource, cfg.tier,
                 cfg.listen, port, cfg.token.empty() ? "" : ", token required",
                 cfg.tls_cert.empty() ? "" : ", TLS");
    std::fflush(stdout);
    ServeUntilStopped([&server] { server.Shutdown(); }, [&server] { server.Wait(); });
  });
}

}  // namespace scission::cli
