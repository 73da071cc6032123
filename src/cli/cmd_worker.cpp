#include <signal.h>

#include <cstdio>
#include <thread>

#include "cli/common.h"
#include "deploy/worker.h"

namespace scission::cli {

void RegisterWorker(CLI::App& app, GlobalOptions& global) {
  auto* cmd =
      app.add_subcommand("worker", "serve benchmarks and segments to coordinators over gRPC");
  AddGlobalFlags(cmd, global);
  auto o = std::make_shared<deploy::WorkerOptions>();
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on")->required();
  cmd->add_option("--resource", o->resource, "this machine's resource name")->required();
  cmd->add_option("--tier", o->tier, "this machine's tier")->required();
  cmd->add_option("--token", o->token, "shared secret callers must present");
  cmd->add_option("--tls-cert", o->tls_cert, "PEM certificate (TLS)");
  cmd->add_option("--tls-key", o->tls_key, "PEM private key (TLS)");
  cmd->add_option("--tls-ca", o->tls_ca, "PEM roots for forwarding to TLS workers");
  cmd->add_option("--cache-dir", o->cache_dir, "model cache (default $SCISSION_HOME/worker)");
  cmd->add_option("--threads", o->threads, "intra-op threads for segments (0 = default)");
  cmd->callback([o, &global] {
    // Block SIGINT/SIGTERM in every thread; one thread waits for them and shuts the server down.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    deploy::WorkerServer server(*o);
    int port = server.Start();
    if (global.json)
      PrintJson(
          {{"listen", o->listen}, {"port", port}, {"resource", o->resource}, {"tier", o->tier}});
    else
      fmt::print("worker {} (tier {}) listening on {} (port {}){}{}\n", o->resource, o->tier,
                 o->listen, port, o->token.empty() ? "" : ", token required",
                 o->tls_cert.empty() ? "" : ", TLS");
    std::fflush(stdout);
    std::thread stopper([&server, signals] {
      int sig = 0;
      sigwait(&signals, &sig);
      server.Shutdown();
    });
    server.Wait();
    stopper.detach();
  });
}

}  // namespace scission::cli
