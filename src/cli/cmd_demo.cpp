#include <signal.h>

#include <filesystem>
#include <thread>

#include <fmt/ranges.h>

#include "cli/common.h"
#include "common/files.h"
#include "common/text.h"
#include "deploy/testbed.h"
#include "profile/stats.h"
#include "zoo/zoo.h"

namespace scission::cli {

namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  for (auto& item : SplitCommas(text))
    if (!item.empty()) out.push_back(std::move(item));
  return out;
}

nlohmann::json MustJson(const deploy::CommandOutput& r, const std::string& what) {
  if (r.exit_code != 0) {
    std::string err = r.err;
    auto pos = err.find("error:");
    throw Internal(
        "demo step '{}' failed (exit {}): {}", what, r.exit_code,
        pos == std::string::npos ? OneLine(err.substr(0, 300)) : OneLine(err.substr(pos)));
  }
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) throw Internal("demo step '{}' printed no JSON", what);
  return doc;
}

deploy::Testbed* g_testbed = nullptr;

}  // namespace

void RegisterDemo(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "demo",
      "the whole loop on this machine: device/edge/cloud namespaces, workers, probes, "
      "benchmarks, plans, runs, predicted vs measured");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string models = "resnet18";
    std::string bandwidths = "5,20,100";
    int top = 3, requests = 8, repeats = 10;
    double device_cpu = 0.5;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--models", o->models,
                  "zoo models or .onnx files, comma-separated (default resnet18)");
  cmd->add_option("--bandwidths", o->bandwidths, "device link rates in Mbit/s (default 5,20,100)");
  cmd->add_option("--top", o->top, "plans run per model and rate (default 3)");
  cmd->add_option("--requests", o->requests, "measured requests per plan (default 8)");
  cmd->add_option("--repeats", o->repeats, "benchmark repeats per block (default 10)");
  cmd->add_option("--device-cpu", o->device_cpu, "CPU quota of the device in cores (default 0.5)");
  cmd->callback([o, &global] {
    if (o->top < 1 || o->requests < 1 || o->repeats < 1)
      throw BadInput("--top, --requests and --repeats must be at least 1");
    if (!(o->device_cpu > 0.01 && o->device_cpu <= 64))
      throw BadInput("--device-cpu must be in (0.01, 64]");
    std::vector<double> rates;
    for (const auto& b : SplitList(o->bandwidths)) {
      double mbps = std::atof(b.c_str());
      if (!(mbps > 0)) throw BadInput("--bandwidths: '{}' is not a positive rate", b);
      rates.push_back(mbps);
    }
    auto say = [&](const std::string& m) {
      if (!global.json) fmt::print("{}\n", m);
      std::fflush(stdout);
    };
    // Models first (an export may take a while), each seeded into the workers' shared cache.
    std::vector<std::pair<std::string, std::string>> models;  // name, path
    std::string cache = ScissionHome() + "/worker";
    std::filesystem::create_directories(cache);
    for (const auto& m : SplitList(o->models)) {
      std::string path = std::filesystem::absolute(zoo::ResolveModel(m, [](const std::string& x) {
                           Note(x);
                         })).string();
      std::string sha = Sha256Hex(ReadFileBytes(path));
      std::string cached = cache + "/" + sha + ".onnx";
      std::error_code ec;
      if (!std::filesystem::exists(cached)) std::filesystem::copy_file(path, cached, ec);
      models.emplace_back(m, path);
    }
    std::string work = ScissionHome() + "/demo";
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    std::string db =
        global.db.empty() ? work + "/demo.db" : std::filesystem::absolute(global.db).string();

    deploy::TestbedOptions tb;
    tb.device_mbps = rates.front();
    tb.device_cpu_share = o->device_cpu;
    tb.binary = std::filesystem::canonical("/proc/self/exe").string();
    tb.log_dir = work + "/logs";
    // Ctrl-C / SIGTERM: a dedicated thread tears the test bed down, then the process exits.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not skip the clean-up
    deploy::Testbed testbed(tb);
    g_testbed = &testbed;
    std::thread([signals] {
      int sig = 0;
      sigwait(&signals, &sig);
      if (g_testbed) g_testbed->Cleanup();
      std::fprintf(stderr, "\ndemo interrupted; namespaces, workers and cgroup removed\n");
      std::_Exit(130);
    }).detach();

    if (testbed.Setup())
      say(
          fmt::format("test bed: namespaces sc-device/sc-edge/sc-cloud via a bridge; device link "
                      "{} Mbit/s, edge 200, "
                      "cloud 1000 (tc tbf both ways); device CPU quota {} core(s); no added RTT "
                      "(netem is unavailable)",
                      rates.front(), o->device_cpu));
    else
      say("test bed: " + testbed.fallback_reason());
    auto dbflag = std::vector<std::string>{"--db", db};
    auto with_db = [&](std::vector<std::string> args) {
      args.insert(args.end(), dbflag.begin(), dbflag.end());
      args.push_back("--json");
      return args;
    };
    testbed.StartWorker("device", {"--threads", "1"});
    testbed.StartWorker("edge", {"--threads", "1"});
    testbed.StartWorker("cloud", {"--threads", "2"});
    say(fmt::format("workers: device {}, edge {}, cloud {}", testbed.Address("device"),
                    testbed.Address("edge"), testbed.Address("cloud")));
    auto probe = [&](const std::string& from, const std::string& to) {
      auto r = MustJson(testbed.Run(from, with_db({"probe", testbed.Address(to), "--from", from})),
                        "probe " + from + "->" + to);
      say(fmt::format("link {} -> {}: RTT {:.3f} ms, {:.1f} Mbit/s up, {:.1f} down", from, to,
                      r["rtt_ms"].get<double>(), r["upload_mbps"].get<double>(),
                      r["download_mbps"].get<double>()));
    };
    probe("edge", "cloud");
    std::string workers = fmt::format("device={},edge={},cloud={}", testbed.Address("device"),
                                      testbed.Address("edge"), testbed.Address("cloud"));
    for (const auto& [name, path] : models) {
      say(fmt::format("benchmarking {} on every worker ...", name));
      auto r =
          MustJson(testbed.Run("device", with_db({"fleet", "benchmark", path, "--workers", workers,
                                                  "--repeats", std::to_string(o->repeats)})),
                   "fleet benchmark " + name);
      for (const auto& w : r)
        say(fmt::format("  {}: whole model {:.2f} ms, blocks {:.2f} ms",
                        w["resource"].get<std::string>(), w["whole_median_ms"].get<double>(),
                        w["sum_block_median_ms"].get<double>()));
    }

    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    std::vector<double> errors;
    Table table({"model", "Mbit/s", "rank", "plan", "predicted ms", "measured ms", "error"});
    for (double mbps : rates) {
      testbed.SetDeviceMbps(mbps);
      say(fmt::format("device link now {} Mbit/s", mbps));
      probe("device", "edge");
      probe("device", "cloud");
      for (const auto& [name, path] : models) {
        auto plan_result =
            testbed.Run("device", with_db({"plan", path, "--top", std::to_string(o->top)}));
        auto plan_doc = MustJson(plan_result, "plan " + name);
        std::string plan_file = fmt::format("{}/plan-{}-{}.json", work, name, mbps);
        WriteFileAtomic(plan_file, plan_result.out);
        int count = static_cast<int>(plan_doc["plans"].size());
        for (int rank = 1; rank <= count; ++rank) {
          auto run = MustJson(
              testbed.Run(
                  "device",
                  with_db({"run", "--plan", plan_file, "--rank", std::to_string(rank), "--workers",
                           workers, "--requests", std::to_string(o->requests), "--threads", "1"})),
              fmt::format("run {} rank {}", name, rank));
          const auto& p = plan_doc["plans"][static_cast<size_t>(rank - 1)];
          std::string layout;
          for (const auto& s : p["stages"])
            layout += fmt::format("{}{}[{}..{}]", layout.empty() ? "" : " ",
                                  s["resource"].get<std::string>(), s["first_block"].get<int>(),
                                  s["last_block"].get<int>());
          double predicted = p["latency_ms"], measured = run["total"]["median_ms"];
          double error = measured > 0 ? (predicted - measured) / measured : 0;
          errors.push_back(std::fabs(error));
          runs.push_back({{"model", name},
                          {"plan", layout},
                          {"rank", rank},
                          {"link_mbps", mbps},
                          {"predicted_ms", predicted},
                          {"measured_ms", measured},
                          {"measured_p90_ms", run["total"]["p90_ms"]},
                          {"failed", run["failed"]},
                          {"stages", run["stages"]},
                          {"hops", run["hops"]}});
          table.Add({name, fmt::format("{:g}", mbps), std::to_string(rank), layout,
                     fmt::format("{:.2f}", predicted), fmt::format("{:.2f}", measured),
                     fmt::format("{:+.1f}%", error * 100)});
          say(fmt::format(
              "  {} @ {} Mbit/s rank {}: predicted {:.2f} ms, measured {:.2f} ms ({:+.1f}%)", name,
              mbps, rank, predicted, measured, error * 100));
        }
      }
    }
    testbed.Cleanup();
    g_testbed = nullptr;
    double median = errors.empty() ? 0 : profile::Median(errors),
           p90 = errors.empty() ? 0 : profile::Percentile(errors, 0.9);
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["isolated"] = testbed.fallback_reason().empty();
      doc["runs"] = runs;
      doc["median_abs_rel_error"] = median;
      doc["p90_abs_rel_error"] = p90;
      PrintJson(doc);
      return;
    }
    fmt::print("\n");
    table.Print();
    fmt::print(
        "\n|predicted - measured| / measured over {} runs: median {:.1f}%, p90 {:.1f}%\nstore: "
        "{}\n",
        errors.size(), median * 100, p90 * 100, db);
  });
}

}  // namespace scission::cli
