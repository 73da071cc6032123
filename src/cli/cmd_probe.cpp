#include "cli/common.h"
#include "common/text.h"
#include "deploy/client.h"
#include "store/validate.h"

namespace scission::cli {

std::map<std::string, std::string> ParseWorkers(const std::string& text) {
  std::map<std::string, std::string> workers;
  for (const auto& item : SplitCommas(text)) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw BadInput("--workers expects name=host:port,..., got '{}'", item);
    deploy::CheckAddress(item.substr(eq + 1));
    workers[item.substr(0, eq)] = item.substr(eq + 1);
  }
  if (workers.empty()) throw BadInput("--workers is empty");
  return workers;
}

void AddConnectFlags(CLI::App* cmd, ConnectFlags& flags) {
  cmd->add_option("--token-file", flags.token_file, "file holding the token the workers require");
  cmd->add_option("--token", flags.token,
                  "token the workers require (visible in the process list: prefer --token-file "
                  "or $SCISSION_TOKEN)");
  cmd->add_option("--tls-ca", flags.tls_ca, "PEM roots to verify TLS workers");
  cmd->add_flag("--tls", flags.tls, "TLS with the system's roots");
}

deploy::ConnectOptions ConnectFlags::Resolve() const {
  deploy::ConnectOptions o;
  o.token = deploy::ResolveToken(token, token_file);
  if (!token.empty() && token_file.empty() && o.token == token)
    Note(
        "note: --token is visible to other users in the process list; prefer --token-file or "
        "$SCISSION_TOKEN");
  o.tls_ca = tls_ca;
  o.tls = tls;
  return o;
}

void RegisterProbe(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("probe", "measure RTT and bandwidth to a worker; store the link");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string address, from = "local";
    ConnectFlags connect;
    deploy::ProbeOptions probe;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("ADDRESS", o->address, "HOST:PORT of the worker")->required();
  cmd->add_option("--from", o->from, "resource name of this machine (default local)");
  cmd->add_option("--pings", o->probe.pings, "pings for the RTT median (default 20)");
  cmd->add_option("--min-transfer-ms", o->probe.min_transfer_ms,
                  "grow bulk transfers until they last this long");
  AddConnectFlags(cmd, o->connect);
  cmd->callback([o, &global] {
    o->probe.Validate();
    store::ValidateName(o->from, "--from");
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    deploy::WorkerClient client(o->address, o->connect.Resolve());
    auto info = client.Hello();
    if (info.resource == o->from)
      throw BadInput("the worker is '{}' too; pass --from with this machine's name", o->from);
    auto r = client.Probe(o->probe);
    db.UpsertLinks({{o->from, info.resource, r.rtt_ms, r.upload_mbps, "probe", ""},
                    {info.resource, o->from, r.rtt_ms, r.download_mbps, "probe", ""}});
    if (global.json) {
      PrintJson({{"from", o->from},
                 {"to", info.resource},
                 {"address", o->address},
                 {"rtt_ms", r.rtt_ms},
                 {"rtt_p90_ms", r.rtt_p90_ms},
                 {"upload_mbps", r.upload_mbps},
                 {"download_mbps", r.download_mbps},
                 {"upload_bytes", r.upload_bytes},
                 {"download_bytes", r.download_bytes}});
      return;
    }
    fmt::print(
        "{} -> {} ({}): RTT median {:.3f} ms (p90 {:.3f}), up {:.1f} Mbit/s ({}), down {:.1f} "
        "Mbit/s ({}); stored both directions\n",
        o->from, info.resource, o->address, r.rtt_ms, r.rtt_p90_ms, r.upload_mbps,
        FormatBytes(r.upload_bytes), r.download_mbps, FormatBytes(r.download_bytes));
  });
}

}  // namespace scission::cli
