#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/ranges.h>

#include "cli/common.h"
#include "common/files.h"
#include "common/text.h"
#include "deploy/testbed.h"
#include "plan/document.h"
#include "profile/stats.h"
#include "report/html.h"
#include "report/timeline.h"
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

// One name per model for file names, tables and JSON: the zoo name or the file's stem
// ("/models/v2/resnet.onnx" -> "resnet"; a path never ends up inside a file name). A name already
// taken gets "-2", "-3", ..., so two files with the same stem keep files of their own.
std::vector<std::string> ModelNames(const std::vector<std::string>& models) {
  std::vector<std::string> names;
  for (const auto& m : models) {
    std::string stem = std::filesystem::path(m).stem().string();
    if (stem.empty()) stem = "model";
    std::string name = stem;
    for (int n = 2; std::find(names.begin(), names.end(), name) != names.end(); ++n)
      name = fmt::format("{}-{}", stem, n);
    names.push_back(std::move(name));
  }
  return names;
}

deploy::Testbed* g_testbed = nullptr;

double UnixMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    if (!doc.is_discarded()) out.push_back(std::move(doc));
  }
  return out;
}

std::string LayoutOf(const nlohmann::json& plan) {
  return plan::PlanKey(plan::PlannedRunFromJson(plan, "plan"));
}

// The adaptive scenario (issue 9): `serve` on the device answers a steady stream of requests
// while the test bed changes the device's link and the edge's CPU on a schedule. Arms: adaptive
// (serve as shipped), static (the first plan, never switching) and oracle (in each phase, the
// best measured among the candidate plans, each served alone under that phase's conditions).
struct AdaptiveOptions {
  std::string model, path, workers, db, work;
  double phase_s = 20, measure_s = 4, settle_s = 5;
};

struct Phase {
  std::string name;
  double device_mbps;
  double edge_cpu;  // cores; 0 = unlimited
};

nlohmann::ordered_json RunAdaptive(deploy::Testbed& tb, const AdaptiveOptions& o,
                                   const std::function<void(const std::string&)>& say) {
  const std::vector<Phase> phases = {{"a: device link 100 Mbit/s", 100, 0},
                                     {"b: device link 5 Mbit/s", 5, 0},
                                     {"c: device link 50 Mbit/s", 50, 0},
                                     {"d: 50 Mbit/s, edge CPU quota 0.15 core", 50, 0.15},
                                     {"e: back to a", 100, 0}};
  auto apply = [&](const Phase& p) {
    tb.SetLinkMbps("device", p.device_mbps);
    tb.SetCpuShare("edge", p.edge_cpu);
  };
  auto db = std::vector<std::string>{"--db", o.db};
  auto with = [&](std::vector<std::string> args, bool json = true) {
    args.insert(args.end(), db.begin(), db.end());
    if (json) args.push_back("--json");
    return args;
  };
  auto probe_links = [&] {
    for (const std::string to : {"edge", "cloud"})
      MustJson(tb.Run("device", with({"probe", tb.Address(to), "--from", "device", "--pings", "5",
                                      "--min-transfer-ms", "300"})),
               "probe device->" + to);
  };
  // Starts `serve` on the device and waits for its ready line.
  auto start_serve = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"serve",    o.path,           "--workers", o.workers,
                                     "--listen", "127.0.0.1:8001", "--threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    int h = tb.Start("device", with(args, false));
    for (int i = 0; i < 1200; ++i) {
      if (tb.Output(h).find("serving ") != std::string::npos) return h;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto r = tb.Stop(h, 2000);
    throw Internal("demo: serve did not start: {}", OneLine(r.err.substr(0, 400)));
  };
  auto loadgen = [&](double seconds, const std::string& records) {
    std::vector<std::string> args = {"loadgen", "127.0.0.1:8001", "--model",
                                     o.model,   "--duration-s",   fmt::format("{}", seconds)};
    if (!records.empty()) {
      args.push_back("--records");
      args.push_back(records);
    }
    args.push_back("--json");  // loadgen keeps no store: no --db
    return args;
  };

  apply(phases[0]);
  probe_links();
  // The static arm's plan: the best at phase a's conditions, as serve would first choose it.
  auto static_plan = tb.Run("device", with({"plan", o.path, "--tiers", "device,edge,cloud"}));
  MustJson(static_plan, "plan (static)");
  const std::string static_file = o.work + "/adaptive-static.json";
  WriteFileAtomic(static_file, static_plan.out);

  // Adaptive arm: one serve, one client, the whole schedule.
  const std::string records = o.work + "/adaptive-requests.jsonl";
  const std::string switch_log = o.work + "/adaptive-switches.jsonl";
  std::filesystem::remove(records);
  std::filesystem::remove(switch_log);
  say("adaptive arm: serve on the device, one client sending back to back");
  const std::string metrics_file = o.work + "/adaptive-metrics.txt";
  std::filesystem::remove(metrics_file);
  int serve = start_serve(
      {"--tiers", "device,edge,cloud", "--switch-log", switch_log, "--metrics", "127.0.0.1:9101"});
  say("  " + OneLine(tb.Output(serve)));
  // serve's /metrics at the end of each phase: its estimates then, and the probes' cost so far.
  std::string last_metrics;
  auto scrape = [&](const std::string& when) {
    auto r =
        tb.RunTool("device", {"curl", "-sS", "--max-time", "3", "http://127.0.0.1:9101/metrics"});
    if (r.exit_code != 0) return;
    last_metrics = r.out;
    std::ofstream(metrics_file, std::ios::app) << "# --- " << when << "\n" << r.out;
  };
  int client =
      tb.Start("device", loadgen(o.phase_s * static_cast<double>(phases.size()), records), false);
  std::vector<double> starts;
  for (const auto& p : phases) {
    apply(p);
    starts.push_back(UnixMs());
    say(fmt::format("  phase {}", p.name));
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(o.phase_s * 1000)));
    scrape("end of phase " + p.name);
  }
  starts.push_back(UnixMs());
  {
    nlohmann::ordered_json spans = nlohmann::ordered_json::array();
    for (size_t i = 0; i < phases.size(); ++i)
      spans.push_back(
          {{"name", phases[i].name}, {"start_unix_ms", starts[i]}, {"end_unix_ms", starts[i + 1]}});
    WriteFileAtomic(o.work + "/adaptive-phases.json",
                    nlohmann::ordered_json{{"phases", spans}}.dump(1) + "\n");
  }
  auto client_out = tb.Wait(client, 60000);
  auto summary = MustJson(client_out, "loadgen (adaptive)");
  tb.Stop(serve);
  auto requests = ReadJsonLines(records);
  auto switches = ReadJsonLines(switch_log);

  // Static and oracle arms: each candidate plan served alone in each phase.
  nlohmann::ordered_json table = nlohmann::ordered_json::array();
  std::vector<double> switch_delays;
  for (size_t i = 0; i < phases.size(); ++i) {
    const auto& p = phases[i];
    apply(p);
    probe_links();
    std::vector<std::pair<std::string, int>> files = {{static_file, 1}};
    const std::string top = fmt::format("{}/adaptive-{}-top.json", o.work, i);
    const std::string no_edge = fmt::format("{}/adaptive-{}-noedge.json", o.work, i);
    auto r1 =
        tb.Run("device", with({"plan", o.path, "--tiers", "device,edge,cloud", "--top", "2"}));
    MustJson(r1, "plan");
    WriteFileAtomic(top, r1.out);
    files.push_back({top, 1});
    files.push_back({top, 2});
    auto r2 = tb.Run("device", with({"plan", o.path, "--tiers", "device,edge,cloud", "-e", "-1"}));
    if (r2.exit_code == 0) {
      WriteFileAtomic(no_edge, r2.out);
      files.push_back({no_edge, 1});
    }
    std::map<std::string, double> measured;
    std::string static_layout;
    for (const auto& [file, rank] : files) {
      auto doc = nlohmann::json::parse(ReadFileBytes(file));
      if (static_cast<int>(doc["plans"].size()) < rank) continue;
      const std::string layout = LayoutOf(doc["plans"][static_cast<size_t>(rank - 1)]);
      if (file == static_file) static_layout = layout;
      if (measured.count(layout)) continue;
      int h = start_serve({"--plan", file, "--rank", std::to_string(rank), "--no-adapt"});
      auto r = MustJson(tb.Run("device", loadgen(o.measure_s, ""), false), "loadgen");
      tb.Stop(h);
      measured[layout] = r["latency_ms"]["mean"].get<double>();
      say(fmt::format("  {}: {} -> {:.1f} ms", p.name, layout, measured[layout]));
    }
    double oracle = 1e300;
    for (const auto& [layout, ms] : measured) oracle = std::min(oracle, ms);
    // The adaptive arm's mean after the settling window, its switches in this phase.
    const double from = starts[i] + o.settle_s * 1000, to = starts[i + 1];
    double sum = 0;
    int n = 0;
    for (const auto& r : requests) {
      const double t = r.value("start_unix_ms", 0.0);
      if (t >= from && t < to && r.value("code", "") == "OK") {
        sum += r["latency_ms"].get<double>();
        ++n;
      }
    }
    int in_phase = 0;
    nlohmann::json after = nullptr;
    for (const auto& sw : switches) {
      const double t = sw["time_unix_ms"].get<double>();
      if (t < starts[i] || t >= starts[i + 1]) continue;
      if (in_phase++ == 0) {
        after = (t - starts[i]) / 1000;
        if (i > 0) switch_delays.push_back(after.get<double>());
      }
    }
    table.push_back(
        {{"name", p.name},
         {"adaptive_ms", n > 0 ? nlohmann::json(sum / n) : nlohmann::json()},
         {"static_ms", measured.count(static_layout) ? nlohmann::json(measured[static_layout])
                                                     : nlohmann::json()},
         {"oracle_ms", oracle},
         {"switch_after_s", after},
         {"switches", in_phase},
         {"adaptive_requests", n},
         {"plans_measured", measured}});
  }
  int64_t errors = 0;
  for (const auto& [code, count] : summary["errors"].items()) errors += count.get<int64_t>();
  // The background measurement's cost over the adaptive arm: compute seconds per worker and bytes
  // per link, from serve's counters at the end of the last phase.
  nlohmann::ordered_json overhead = {{"seconds", o.phase_s * static_cast<double>(phases.size())},
                                     {"probe_compute_s", nlohmann::ordered_json::object()},
                                     {"probe_bytes", nlohmann::ordered_json::object()}};
  {
    std::istringstream in(last_metrics);
    std::string line;
    auto label = [](const std::string& l) {
      auto a = l.find('"'), b = l.find('"', a + 1);
      return a == std::string::npos || b == std::string::npos ? std::string()
                                                              : l.substr(a + 1, b - a - 1);
    };
    while (std::getline(in, line)) {
      const auto space = line.rfind(' ');
      if (space == std::string::npos || line.empty() || line[0] == '#') continue;
      const double value = std::strtod(line.c_str() + space + 1, nullptr);
      if (line.rfind("scission_probe_compute_seconds_total{", 0) == 0)
        overhead["probe_compute_s"][label(line)] = value;
      else if (line.rfind("scission_probe_bytes_total{", 0) == 0)
        overhead["probe_bytes"][label(line)] = value;
      else if (line.rfind("scission_standby_loads_total ", 0) == 0)
        overhead["standby_loads"] = value;
      else if (line.rfind("scission_standby_load_seconds_total ", 0) == 0)
        overhead["standby_load_s"] = value;
    }
  }
  nlohmann::ordered_json doc = {
      {"phases", table},
      {"lost", summary["lost"]},
      {"errors", errors},
      {"duplicates", summary["duplicates"]},
      {"requests", summary["sent"]},
      {"switch_log", switches},
      {"probe_overhead", overhead},
      {"median_switch_after_s",
       switch_delays.empty() ? nlohmann::json() : nlohmann::json(profile::Median(switch_delays))},
      {"records", records},
      {"metrics", metrics_file}};
  return doc;
}

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
    std::string scenario = "static";
    double phase_s = 20, measure_s = 4;
    bool loopback = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--models", o->models,
                  "zoo models or .onnx files, comma-separated (default resnet18)");
  cmd->add_option("--bandwidths", o->bandwidths, "device link rates in Mbit/s (default 5,20,100)");
  cmd->add_option("--top", o->top, "plans run per model and rate (default 3)");
  cmd->add_option("--requests", o->requests, "measured requests per plan (default 8)");
  cmd->add_option("--repeats", o->repeats, "benchmark repeats per block (default 10)");
  cmd->add_option("--device-cpu", o->device_cpu,
                  "CPU quota of the device in cores (default 0.5; 0.2 for the adaptive and codecs "
                  "scenarios)");
  cmd->add_option("--scenario", o->scenario,
                  "static: plans and runs per link rate (default); adaptive: serve while the "
                  "link and the edge's CPU change on a schedule; codecs: at each rate the best "
                  "plan raw, with lossless codecs and with lossy ones (<= 1% output error)")
      ->check(CLI::IsMember({"static", "adaptive", "codecs"}));
  cmd->add_option("--phase-s", o->phase_s, "adaptive: seconds per phase (default 20)");
  cmd->add_option("--measure-s", o->measure_s,
                  "adaptive: seconds each candidate plan is measured per phase (default 4)");
  cmd->add_flag("--loopback", o->loopback,
                "every host on 127.0.0.1: no namespaces, link shaping or CPU quotas (as without "
                "root), and the machine's network is left alone");
  cmd->callback([o, &global, cmd] {
    const bool adaptive = o->scenario == "adaptive";
    const bool codecs = o->scenario == "codecs";
    if (codecs && cmd->count("--bandwidths") == 0) o->bandwidths = "5,20";
    if (adaptive && !(o->phase_s >= 5 && o->phase_s <= 600))
      throw BadInput("--phase-s must be 5..600");
    if (adaptive && !(o->measure_s >= 1 && o->measure_s <= 120))
      throw BadInput("--measure-s must be 1..120");
    // The adaptive scenario needs a device slow enough that offloading pays on a fast link; so
    // does the codecs one (at 0.5 core resnet18 stays on the device at 5 Mbit/s whatever the
    // codec, and only lossy codecs move it at 20).
    if ((adaptive || codecs) && cmd->count("--device-cpu") == 0) o->device_cpu = 0.2;
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
    std::vector<std::pair<std::string, std::string>> models;  // name (ModelNames), path
    std::string cache = ScissionHome() + "/worker";
    std::filesystem::create_directories(cache);
    const auto given = SplitList(o->models);
    const auto names = ModelNames(given);
    for (size_t i = 0; i < given.size(); ++i) {
      std::string path =
          std::filesystem::absolute(zoo::ResolveModel(given[i], [](const std::string& x) {
            Note(x);
          })).string();
      std::string sha = Sha256Hex(ReadFileBytes(path));
      std::string cached = cache + "/" + sha + ".onnx";
      std::error_code ec;
      if (!std::filesystem::exists(cached)) std::filesystem::copy_file(path, cached, ec);
      models.emplace_back(names[i], path);
    }
    std::string work = ScissionHome() + "/demo";
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    std::string db =
        global.db.empty() ? work + "/demo.db" : std::filesystem::absolute(global.db).string();

    deploy::TestbedOptions tb;
    tb.device_mbps = adaptive ? 100 : rates.front();
    // Adaptive: the cloud sits behind a 20 Mbit/s link, so the edge is the place to offload to
    // until its CPU is taken away.
    if (adaptive) tb.cloud_mbps = 20;
    tb.device_cpu_share = o->device_cpu;
    tb.isolate = !o->loopback;
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
                      "{} Mbit/s, edge {}, "
                      "cloud {} (tc tbf both ways); device CPU quota {} core(s); no added RTT "
                      "(netem is unavailable)",
                      tb.device_mbps, tb.edge_mbps, tb.cloud_mbps, o->device_cpu));
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
      say(fmt::format("benchmarking {} ({}) on every worker ...", name, path));
      std::vector<std::string> args = {"fleet",
                                       "benchmark",
                                       path,
                                       "--workers",
                                       workers,
                                       "--repeats",
                                       std::to_string(o->repeats)};
      // The codecs scenario plans lossy codecs too: they need their fidelity measured.
      if (codecs) args.insert(args.end(), {"--codecs", "all"});
      auto r = MustJson(testbed.Run("device", with_db(args)), "fleet benchmark " + name);
      for (const auto& w : r)
        say(fmt::format("  {}: whole model {:.2f} ms, blocks {:.2f} ms",
                        w["resource"].get<std::string>(), w["whole_median_ms"].get<double>(),
                        w["sum_block_median_ms"].get<double>()));
    }

    if (adaptive) {
      AdaptiveOptions ao;
      ao.model = std::filesystem::path(models.front().second).stem().string();
      ao.path = models.front().second;
      ao.workers =
          fmt::format("edge={},cloud={}", testbed.Address("edge"), testbed.Address("cloud"));
      ao.db = db;
      ao.work = work;
      ao.phase_s = o->phase_s;
      ao.measure_s = o->measure_s;
      ao.settle_s = std::min(5.0, o->phase_s / 3);
      auto doc = RunAdaptive(testbed, ao, say);
      testbed.Cleanup();
      g_testbed = nullptr;
      {
        // The report with the run's timeline: latency per request, phases, switches.
        store::Store store(db);
        report::ReportOptions ro;
        ro.timeline = report::ReadTimeline(work);
        const std::string html = work + "/adaptive-report.html";
        WriteFileAtomic(html, report::RenderReport(store, ro));
        doc["report"] = html;
      }
      if (global.json) {
        PrintJson(doc);
        return;
      }
      Table t({"phase", "adaptive ms", "static ms", "oracle ms", "adaptive/oracle",
               "static/adaptive", "switch after s", "switches"});
      auto num = [](const nlohmann::json& v, const char* f) {
        return v.is_number() ? fmt::format(fmt::runtime(f), v.get<double>()) : std::string("-");
      };
      for (const auto& p : doc["phases"]) {
        const double a = p["adaptive_ms"].is_number() ? p["adaptive_ms"].get<double>() : 0;
        t.Add({p["name"], num(p["adaptive_ms"], "{:.1f}"), num(p["static_ms"], "{:.1f}"),
               num(p["oracle_ms"], "{:.1f}"),
               a > 0 ? fmt::format("{:.2f}", a / p["oracle_ms"].get<double>()) : "-",
               a > 0 && p["static_ms"].is_number()
                   ? fmt::format("{:.2f}", p["static_ms"].get<double>() / a)
                   : "-",
               num(p["switch_after_s"], "{:.1f}"), std::to_string(p["switches"].get<int>())});
      }
      fmt::print("\n");
      t.Print();
      fmt::print("\nrequests {}, errors {}, lost {}, duplicates {}; switches:\n",
                 doc["requests"].dump(), doc["errors"].dump(), doc["lost"].dump(),
                 doc["duplicates"].dump());
      for (const auto& sw : doc["switch_log"])
        fmt::print("  {} -> {} ({}; predicted {:+.0f}%, measured {}; install {:.0f} ms{})\n",
                   sw["from"].get<std::string>(), sw["to"].get<std::string>(),
                   sw["trigger"].get<std::string>(), sw["predicted_gain"].get<double>() * 100,
                   sw["measured_gain"].is_number()
                       ? fmt::format("{:+.0f}%", sw["measured_gain"].get<double>() * 100)
                       : std::string("-"),
                   sw.value("install_ms", 0.0), sw.value("from_standby", false) ? ", standby" : "");
      const auto& ov = doc["probe_overhead"];
      std::string compute, bytes;
      for (const auto& [k, v] : ov["probe_compute_s"].items())
        compute += fmt::format(" {} {:.2f} s", k, v.get<double>());
      for (const auto& [k, v] : ov["probe_bytes"].items())
        bytes += fmt::format(" {} {:.1f} MB", k, v.get<double>() / 1e6);
      fmt::print("background probes over {:.0f} s: compute{}; upload{}\n",
                 ov["seconds"].get<double>(), compute.empty() ? " none" : compute,
                 bytes.empty() ? " none" : bytes);
      fmt::print("per-request records: {}; serve's /metrics per phase: {}\nreport: {}\n",
                 doc["records"].get<std::string>(), doc["metrics"].get<std::string>(),
                 doc["report"].get<std::string>());
      return;
    }
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    std::vector<double> errors;
    // Static: the top plans as `plan` gives them. Codecs: at each rate the best plan sending raw
    // tensors, with the lossless codecs (plan's default) and with lossy ones within 1% relative
    // L2 error of the outputs, each run.
    struct Variant {
      std::string name;
      std::vector<std::string> flags;
      int top;
    };
    std::vector<Variant> variants = {{"", {}, o->top}};
    if (codecs)
      variants = {{"raw", {"--codecs", "none"}, 1},
                  {"lossless", {}, 1},
                  {"lossy<=1%", {"--max-output-error", "0.01"}, 1}};
    std::vector<std::string> columns = {"model",        "Mbit/s",      "rank", "plan",
                                        "predicted ms", "measured ms", "error"};
    if (codecs)
      columns = {"model",        "Mbit/s",      "codecs", "plan",
                 "predicted ms", "measured ms", "error",  "vs raw"};
    Table table(columns);
    for (double mbps : rates) {
      testbed.SetDeviceMbps(mbps);
      say(fmt::format("device link now {} Mbit/s", mbps));
      probe("device", "edge");
      probe("device", "cloud");
      for (const auto& [name, path] : models) {
        double raw_measured = 0;
        for (const auto& variant : variants) {
          std::vector<std::string> plan_args = {"plan", path, "--top", std::to_string(variant.top)};
          plan_args.insert(plan_args.end(), variant.flags.begin(), variant.flags.end());
          auto plan_result = testbed.Run("device", with_db(plan_args));
          auto plan_doc = MustJson(plan_result, "plan " + name);
          std::string plan_file =
              fmt::format("{}/plan-{}-{}{}.json", work, name, mbps,
                          variant.name.empty() ? "" : "-" + variant.name.substr(0, 5));
          WriteFileAtomic(plan_file, plan_result.out);
          int count = static_cast<int>(plan_doc["plans"].size());
          for (int rank = 1; rank <= count; ++rank) {
            auto run = MustJson(
                testbed.Run("device",
                            with_db({"run", "--plan", plan_file, "--rank", std::to_string(rank),
                                     "--workers", workers, "--requests",
                                     std::to_string(o->requests), "--threads", "1"})),
                fmt::format("run {} rank {}", name, rank));
            const auto& p = plan_doc["plans"][static_cast<size_t>(rank - 1)];
            std::string layout;
            for (const auto& st : p["stages"])
              layout += fmt::format("{}{}[{}..{}]", layout.empty() ? "" : " ",
                                    st["resource"].get<std::string>(), st["first_block"].get<int>(),
                                    st["last_block"].get<int>());
            for (const auto& h : p["hops"])
              if (h.value("codec", std::string("none")) != "none")
                layout += fmt::format(" {}->{}:{}", h["from"].get<std::string>(),
                                      h["to"].get<std::string>(), h["codec"].get<std::string>());
            double predicted = p["latency_ms"], measured = run["total"]["median_ms"];
            double error = measured > 0 ? (predicted - measured) / measured : 0;
            errors.push_back(std::fabs(error));
            nlohmann::ordered_json entry = {{"model", name},
                                            {"plan", layout},
                                            {"rank", rank},
                                            {"link_mbps", mbps},
                                            {"predicted_ms", predicted},
                                            {"measured_ms", measured},
                                            {"measured_p90_ms", run["total"]["p90_ms"]},
                                            {"failed", run["failed"]},
                                            {"stages", run["stages"]},
                                            {"hops", run["hops"]}};
            std::vector<std::string> row = {name,
                                            fmt::format("{:g}", mbps),
                                            codecs ? variant.name : std::to_string(rank),
                                            layout,
                                            fmt::format("{:.2f}", predicted),
                                            fmt::format("{:.2f}", measured),
                                            fmt::format("{:+.1f}%", error * 100)};
            if (codecs) {
              if (variant.name == "raw") raw_measured = measured;
              const double gain = raw_measured > 0 && measured > 0 ? raw_measured / measured : 0;
              entry["codecs"] = variant.name;
              entry["output_error"] = p.value("output_error", 0.0);
              // What the lossy codecs really cost (run's one answer against the whole model).
              entry["output_error_measured"] = run.contains("measured_output_error")
                                                   ? run["measured_output_error"]["rel_l2"]
                                                   : nlohmann::json();
              entry["gain_vs_raw"] = gain;
              row.push_back(gain > 0 ? fmt::format("{:.2f}x", gain) : "-");
            }
            runs.push_back(std::move(entry));
            table.Add(row);
            say(
                fmt::format("  {} @ {} Mbit/s {}: {}; predicted {:.2f} ms, measured {:.2f} ms "
                            "({:+.1f}%)",
                            name, mbps, codecs ? variant.name : fmt::format("rank {}", rank),
                            layout, predicted, measured, error * 100));
          }
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
      doc["models"] = nlohmann::ordered_json::array();
      for (const auto& [name, path] : models)
        doc["models"].push_back({{"name", name}, {"path", path}});
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
