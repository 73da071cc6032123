#include <filesystem>
#include <iostream>

#include "cli/common.h"
#include "plan/scission_compat.h"
#include "store/scission_data.h"

namespace scission::cli {

void RegisterPredict(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "predict", "drop-in for the original scission_predict.py on its .dat files and network CSV");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string dir, csv;
    plan::CompatQuery query;
    std::string device_time, edge_time, cloud_time;
    double device_upload = -1, edge_upload = -1;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("DIR", o->dir, "folder with <tier>-<name>.dat files")->required();
  cmd->add_option("NETWORK_CSV", o->csv,
                  "network statistics CSV (relative to DIR, as the original)")
      ->required();
  cmd->add_option("MODEL", o->query.model, "model name as in the .dat files")->required();
  cmd->add_option("--result-count", o->query.result_count, "number of results (default 5)");
  cmd->add_option("-i,--input", o->query.input_mb, "input size in MB (default 0.15)");
  cmd->add_option("-d,--device", o->query.device_criteria, "device criteria");
  cmd->add_option("-e,--edge", o->query.edge_criteria, "edge criteria");
  cmd->add_option("-c,--cloud", o->query.cloud_criteria, "cloud criteria");
  auto* du = cmd->add_option("--device-upload", o->device_upload, "device upload limit (MB)");
  auto* eu = cmd->add_option("--edge-upload", o->edge_upload, "edge upload limit (MB)");
  auto* dt = cmd->add_option("--device-time", o->device_time, "device time limit (s) or x%");
  auto* et = cmd->add_option("--edge-time", o->edge_time, "edge time limit (s) or x%");
  auto* ct = cmd->add_option("--cloud-time", o->cloud_time, "cloud time limit (s) or x%");
  cmd->callback([o, du, eu, dt, et, ct, &global] {
    if (du->count()) o->query.device_upload_mb = o->device_upload;
    if (eu->count()) o->query.edge_upload_mb = o->edge_upload;
    if (dt->count()) o->query.device_time = o->device_time;
    if (et->count()) o->query.edge_time = o->edge_time;
    if (ct->count()) o->query.cloud_time = o->cloud_time;
    namespace fs = std::filesystem;
    std::string csv = o->csv;
    if (fs::path(csv).is_relative() && fs::exists(fs::path(o->dir) / csv))
      csv = (fs::path(o->dir) / csv).string();
    auto systems = store::LoadScissionDirectory(o->dir);
    auto links = store::LoadNetworkCsv(csv);
    auto results = plan::PredictCompat(systems, links, o->query);
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["model"] = o->query.model;
      doc["results"] = nlohmann::ordered_json::array();
      int rank = 1;
      for (const auto& s : results) {
        auto tier = [](const std::string& name, int first, int last, double time) {
          return nlohmann::ordered_json{
              {"system", name == "None" ? nlohmann::ordered_json() : nlohmann::ordered_json(name)},
              {"first_layer", first},
              {"last_layer", last},
              {"compute_s", time}};
        };
        doc["results"].push_back(
            {{"rank", rank},
             {"latency_s", s.latency},
             {"transfer_s", s.transfer},
             {"upload_mb", (s.device_output + s.edge_output) / 1e6},
             {"device", tier(s.device, s.device_first, s.device_last, s.device_time)},
             {"edge", tier(s.edge, s.edge_first, s.edge_last, s.edge_time)},
             {"cloud", tier(s.cloud, s.cloud_first, s.cloud_last, s.cloud_time)},
             {"line", plan::FormatCompatLine(rank, s)}});
        ++rank;
      }
      PrintJson(doc);
      return;
    }
    if (results.empty()) {
      std::cout << "No results for the specified configuration\n";
      return;
    }
    int rank = 1;
    for (const auto& s : results) std::cout << plan::FormatCompatLine(rank++, s) << "\n";
  });
}

}  // namespace scission::cli
