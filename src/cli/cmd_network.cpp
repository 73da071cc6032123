#include "cli/common.h"
#include "store/scission_data.h"
#include "store/store.h"
#include "store/validate.h"

namespace scission::cli {

void RegisterNetwork(CLI::App& app, GlobalOptions& global) {
  auto* net = app.add_subcommand("network", "links between resources");
  net->require_subcommand(1);

  auto* set = net->add_subcommand("set", "set one directed link");
  AddGlobalFlags(set, global);
  auto link = std::make_shared<store::LinkRecord>();
  set->add_option("SRC", link->source)->required();
  set->add_option("DST", link->destination)->required();
  set->add_option("--rtt-ms", link->rtt_ms, "round-trip time in ms")->required();
  set->add_option("--mbps", link->mbps, "bandwidth in Mbit/s")->required();
  set->callback([link, &global] {
    store::ValidateRttMs(link->rtt_ms, "--rtt-ms");
    store::ValidateMbps(link->mbps, "--mbps");
    store::ValidateLink(*link, "network set");
    link->origin = "set";
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    db.UpsertLink(*link);
    if (global.json)
      PrintJson({{"source", link->source},
                 {"destination", link->destination},
                 {"rtt_ms", link->rtt_ms},
                 {"mbps", link->mbps}});
    else
      fmt::print("{} -> {}: {} ms RTT, {} Mbit/s\n", link->source, link->destination, link->rtt_ms,
                 link->mbps);
  });

  auto* imp = net->add_subcommand("import", "links from a Scission network CSV");
  AddGlobalFlags(imp, global);
  auto file = std::make_shared<std::string>();
  imp->add_option("FILE", *file, "source,destination,ping(ms),bandwidth(mbps)")->required();
  imp->callback([file, &global] {
    auto links = store::LoadNetworkCsv(*file);
    std::vector<store::LinkRecord> records;
    for (const auto& l : links)
      records.push_back({l.source, l.destination, l.ping_ms, l.mbps, "csv", ""});
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    db.UpsertLinks(records);
    if (global.json)
      PrintJson({{"links", records.size()}});
    else
      fmt::print("imported {} links from {}\n", records.size(), *file);
  });

  auto* list = net->add_subcommand("list", "stored links");
  AddGlobalFlags(list, global);
  list->callback([&global] {
    store::Store db(global.DbPath());
    auto links = db.Links();
    if (global.json) {
      nlohmann::ordered_json doc = nlohmann::ordered_json::array();
      for (const auto& l : links)
        doc.push_back({{"source", l.source},
                       {"destination", l.destination},
                       {"rtt_ms", l.rtt_ms},
                       {"mbps", l.mbps},
                       {"origin", l.origin},
                       {"updated_at", l.updated_at}});
      PrintJson(doc);
      return;
    }
    Table table({"source", "destination", "rtt ms", "Mbit/s", "origin", "updated"});
    for (const auto& l : links)
      table.Add({l.source, l.destination, fmt::format("{:g}", l.rtt_ms),
                 fmt::format("{:g}", l.mbps), l.origin, l.updated_at});
    table.Print();
  });
}

}  // namespace scission::cli
