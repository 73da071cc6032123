#include "serve/adapter.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "deploy/client.h"
#include "plan/document.h"
#include "plan/planner.h"
#include "serve/estimate.h"
#include "serve/prometheus.h"

namespace scission::serve {

namespace {

using Clock = std::chrono::steady_clock;
using LinkKey = std::pair<std::string, std::string>;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
// CPU time of the calling thread (what a standby load costs this machine).
double ThreadCpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kMinLiveBytes = 32 << 10;  // smaller transfers say little about bandwidth
constexpr int kLiveFreshMs = 2000;           // a live sample this recent needs no probe
constexpr int kConfirmMs = 500;              // confirming probes of one thing at most this often
constexpr int kStandbyHoldMs = 3000;         // a standby choice must hold this long to be loaded
// While a switch is pending, routine probes wait unless none ran for this long. Switch windows are
// at most --switch-window-ms (1 s) and usually far shorter; at 1 s an upload probe on a link that
// had just dropped to 5 Mbit/s (waiting behind our requests' bytes) held a 125 ms window open for
// 900 ms.
constexpr int kPendingProbeHoldMs = 3000;
constexpr int kMeasuredVetoMs = 10000;  // how long a left plan's measured latency vetoes a return

}  // namespace

void AdaptOptions::Validate() const {
  if (replan_ms < 100 || replan_ms > 600000) throw BadInput("--replan-ms must be 100..600000");
  if (!(switch_gain >= 0 && switch_gain < 10)) throw BadInput("--switch-gain must be 0..10");
  if (switch_window_ms < 0 || switch_window_ms > 600000)
    throw BadInput("--switch-window-ms must be 0..600000");
  if (!(probe_duty > 0 && probe_duty <= 0.5)) throw BadInput("--probe-duty must be in (0, 0.5]");
  if (max_age_ms < 1000 || max_age_ms > 3600000)
    throw BadInput("--max-estimate-age-ms must be 1000..3600000");
}

struct Adapter::Impl {
  AdaptOptions o;
  deploy::Pipeline& pipeline;
  plan::PlanProblem base;
  NoteFn note;
  std::string local;                               // the source resource (this machine)
  std::map<std::string, std::vector<double>> sum;  // resource -> prefix sums of block ms

  mutable std::mutex mutex;  // everything below
  std::map<std::string, Estimate> slowdown;
  std::map<LinkKey, Estimate> mbps, rtt;
  std::map<std::string, Clock::time_point> live_resource;
  std::map<LinkKey, Clock::time_point> live_link;
  struct Served {
    Clock::time_point at;
    uint64_t chain;
    double ms;
  };
  std::deque<Served> served;
  std::set<std::string> down;  // workers whose last probe or install failed
  std::map<std::string, std::pair<double, uint64_t>> probe_compute;  // resource: ms, count
  std::map<LinkKey, std::pair<int64_t, uint64_t>> probe_bytes;       // link: bytes, count
  struct Switch {
    nlohmann::ordered_json entry;
    uint64_t chain = 0;
    Clock::time_point at;
    bool written = false;
  };
  std::vector<Switch> switches;
  // Plans a switch left, with their measured mean latency over their last 3 s (at least one
  // request) and when they were left: a plan measured slower seconds ago than the current plan
  // measures now is not switched back to on a prediction (kMeasuredVetoMs).
  struct Left {
    double ms = 0;
    Clock::time_point at;
  };
  std::map<std::string, Left> left;
  uint64_t vetoes = 0;                     // switches refused so (MeasuredWorse)
  std::map<std::string, double> snapshot;  // estimates at the last switch, for the trigger
  bool wake = false;

  // The evaluation state (background thread only).
  std::string pending;  // a better plan was seen at every evaluation since pending_since
  Clock::time_point pending_since;

  std::thread thread;
  std::condition_variable cv;
  bool stop = false;

  Impl(AdaptOptions options, deploy::Pipeline& p, plan::PlanProblem problem, NoteFn n)
      : o(std::move(options)), pipeline(p), base(std::move(problem)), note(std::move(n)) {
    for (const auto& r : base.resources) {
      if (r.tier == 0 && local.empty()) local = r.name;
      auto& s = sum[r.name];
      s.assign(1, 0);
      for (double ms : r.block_ms) s.push_back(s.back() + ms);
    }
  }

  double BaseMs(const std::string& resource, int first, int last) const {
    auto it = sum.find(resource);
    if (it == sum.end() || last < first || first < 0 ||
        last + 1 >= static_cast<int>(it->second.size()))
      return 0;
    return it->second[static_cast<size_t>(last) + 1] - it->second[static_cast<size_t>(first)];
  }

  double RttOf(const LinkKey& key) const {  // under mutex
    auto it = rtt.find(key);
    if (it != rtt.end() && it->second.Fresh(o.max_age_ms)) return it->second.Min();
    auto l = base.links.find(key);
    return l != base.links.end() ? l->second.rtt_ms : 0;
  }
  // The link's propagation RTT: the least ping of the last 30 s. Pings on a link our own requests
  // keep busy queue behind their bytes; subtracting that RTT from a transfer would leave little or
  // nothing and make a 20 Mbit/s link look like 200. Under mutex.
  std::map<LinkKey, std::deque<std::pair<Clock::time_point, double>>> pings;
  double FloorRtt(const LinkKey& key) const {
    auto it = pings.find(key);
    double least = -1;
    if (it != pings.end())
      for (const auto& [at, ms] : it->second)
        if (MsSince(at) <= 30000 && (least < 0 || ms < least)) least = ms;
    return least >= 0 ? least : RttOf(key);
  }
  double MbpsOf(const LinkKey& key) const {  // under mutex
    auto it = mbps.find(key);
    if (it != mbps.end() && it->second.Fresh(o.max_age_ms)) return it->second.Median();
    auto l = base.links.find(key);
    return l != base.links.end() ? l->second.mbps : 0;
  }
  double SlowdownOf(const std::string& r) const {  // under mutex
    auto it = slowdown.find(r);
    return it != slowdown.end() && it->second.Fresh(o.max_age_ms) ? it->second.Median() : 1.0;
  }

  // Resources and links whose last sample was an outlier: probed at once (at most every
  // kConfirmMs each), so a real change is confirmed within one probe rather than at the next
  // request, which on a slowed link may be a second away.
  std::set<std::string> confirm;  // resource names; links by their far end ("link:" + name)
  std::map<std::string, Clock::time_point> confirmed_at;

  // Applies a sample; under mutex. A moved estimate wakes the planner, an outlier also asks for a
  // confirming probe of `what`.
  bool Apply(Estimate& e, double sample, const char* from, const std::string& what) {
    // Samples closer together than this confirm or refute each other sooner than a probe could.
    const bool sparse = e.samples.empty() || e.AgeMs() > 250;
    const Moved m = e.Add(sample, from);
    if (m == Moved::kOutlier && sparse && !what.empty()) confirm.insert(what);
    if (m == Moved::kShift) confirm.erase(what);
    return m != Moved::kNo;
  }

  void Observe(const deploy::ChainResult& r) {
    if (!r.ok) return;
    const auto& plan = r.plan;
    int64_t returned = 0;
    for (const auto& t : r.outputs) returned += static_cast<int64_t>(t.data.size());
    std::lock_guard<std::mutex> lock(mutex);
    const auto now = Clock::now();
    bool changed = false;
    if (r.stage_ms.size() == plan.stages.size()) {
      for (size_t i = 0; i < plan.stages.size(); ++i) {
        const auto& s = plan.stages[i];
        double base_ms = BaseMs(s.resource, s.first_block, s.last_block);
        if (base_ms < 0.05) continue;
        double sample = r.stage_ms[i] / base_ms;
        live_resource[s.resource] = now;
        // A request that overlapped a standby load on the same machine measures that load too.
        auto busy = busy_until.find(s.resource);
        if (busy != busy_until.end() &&
            busy->second > now - std::chrono::microseconds(std::llround(r.total_ms * 1000)))
          continue;
        changed |= Apply(slowdown[s.resource], sample, "live", s.resource);
      }
    }
    // Each hop's time carries its bytes forward and the model's outputs back along the chain.
    for (size_t h = 0; h < r.hop_ms.size() && h < plan.hops.size(); ++h) {
      const auto& hop = plan.hops[h];
      const LinkKey key{hop.from, hop.to};
      const int64_t bytes = hop.bytes + returned;
      // The hop's codec work is inside its time but is not the link's.
      double codec_ms = 0;
      if (h < r.hop_encode_ms.size() && h < r.hop_decode_ms.size())
        codec_ms = r.hop_encode_ms[h] + r.hop_decode_ms[h];
      const double transfer_ms = r.hop_ms[h] - codec_ms - FloorRtt(key);
      if (bytes < kMinLiveBytes || transfer_ms < 0.2) continue;
      double sample = static_cast<double>(bytes) * 8 / (transfer_ms * 1000);
      if (key.first == local)
        changed |= Apply(mbps[key], sample, "live", "link:" + key.second);
      else
        changed |= Apply(mbps[key], sample, "live", "");
      live_link[key] = now;
    }
    served.push_back({now, r.chain, r.total_ms});
    while (served.size() > 2000 ||
           (served.size() > 1 && now - served.front().at > std::chrono::seconds(60)))
      served.pop_front();
    FillMeasuredGains(false);
    if (changed) {
      wake = true;
      cv.notify_all();
    }
  }

  // Mean latency of the requests `chain` answered in [from, to].
  double MeanLatency(uint64_t chain, Clock::time_point from, Clock::time_point to, int* n) const {
    double total = 0;
    *n = 0;
    for (const auto& s : served)
      if (s.chain == chain && s.at >= from && s.at <= to) {
        total += s.ms;
        ++*n;
      }
    return *n > 0 ? total / *n : 0;
  }

  // A switch's measured gain: the mean over the first 20 requests (or 5 s) on the new chain
  // against the last ones on the old chain before it. Under mutex.
  void FillMeasuredGains(bool final) {
    const auto now = Clock::now();
    for (auto& s : switches) {
      if (s.written) continue;
      int n = 0;
      double after = MeanLatency(s.chain, s.at, now, &n);
      if (!final && n < 20 && now - s.at < std::chrono::seconds(5)) continue;
      s.entry["measured_after_ms"] = n > 0 ? nlohmann::json(after) : nlohmann::json();
      s.entry["measured_after_requests"] = n;
      const auto& before = s.entry["measured_before_ms"];
      if (n > 0 && before.is_number() && before.get<double>() > 0)
        s.entry["measured_gain"] = (before.get<double>() - after) / before.get<double>();
      else
        s.entry["measured_gain"] = nullptr;
      s.written = true;
      if (!o.switch_log.empty()) {
        std::ofstream out(o.switch_log, std::ios::app);
        out << s.entry.dump() << "\n";
      }
    }
  }

  // The base problem with every fresh estimate applied and failed workers left out.
  plan::PlanProblem Estimated() const {
    plan::PlanProblem p = base;
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& r : p.resources) {
      double s = SlowdownOf(r.name);
      for (double& ms : r.block_ms) ms *= s;
      // Encoding and decoding run on the same CPU as the blocks.
      for (auto& boundary : r.codec_cost)
        for (auto& c : boundary)
          if (c.measured()) {
            c.encode_ms *= s;
            c.decode_ms *= s;
          }
    }
    for (auto& [key, link] : p.links) {
      link.mbps = std::max(MbpsOf(key), 1e-3);
      link.rtt_ms = RttOf(key);
    }
    std::erase_if(p.resources, [&](const auto& r) { return down.count(r.name) > 0; });
    return p;
  }

  // The estimates as one flat map, for naming what changed.
  std::map<std::string, double> Snapshot() const {  // under mutex
    std::map<std::string, double> out;
    for (const auto& r : base.resources) out["compute " + r.name] = SlowdownOf(r.name);
    for (const auto& [key, link] : base.links)
      if (key.first == local) out["link " + key.first + "->" + key.second] = MbpsOf(key);
    return out;
  }

  std::string Trigger() const {  // under mutex
    auto now = Snapshot();
    std::string best = "periodic re-plan";
    double most = std::log(1.15);
    for (const auto& [name, value] : now) {
      auto it = snapshot.find(name);
      double was = it != snapshot.end() ? it->second : value;
      if (was <= 0 || value <= 0) continue;
      double change = std::fabs(std::log(value / was));
      if (change <= most) continue;
      most = change;
      best = name.rfind("link", 0) == 0
                 ? fmt::format("{} {:.1f} -> {:.1f} Mbit/s", name, was, value)
                 : fmt::format("{} {:.2f}x -> {:.2f}x of its profile", name, was, value);
    }
    for (const auto& d : down) best += fmt::format("; {} does not answer", d);
    return best;
  }

  static double Metric(const plan::PlanProblem& p, const plan::PlanCandidate& c) {
    switch (p.objective) {
      case plan::Objective::kThroughput:
        return c.bottleneck_ms;
      case plan::Objective::kUplink:
        return static_cast<double>(c.uplink_bytes);
      default:
        return c.latency_ms;
    }
  }

  // The current plan under `p`, or nothing when it uses a resource `p` lacks.
  static std::optional<plan::PlanCandidate> Current(const plan::PlanProblem& p,
                                                    const plan::PlannedRun& run) {
    std::vector<plan::Stage> stages;
    for (const auto& s : run.stages) {
      auto it = std::find_if(p.resources.begin(), p.resources.end(),
                             [&](const auto& r) { return r.name == s.resource; });
      if (it == p.resources.end()) return std::nullopt;
      stages.push_back({static_cast<int>(it - p.resources.begin()), s.first_block, s.last_block});
    }
    // With the codecs the chain really uses (a hop's codec is part of what a switch changes).
    std::vector<int> options;
    for (size_t h = 0; h < run.hops.size(); ++h) {
      const int boundary = h + 1 < run.stages.size() ? run.stages[h + 1].first_block : p.blocks;
      int option = 0;
      if (run.hops[h].codec != "none") {
        if (boundary < 0 || static_cast<size_t>(boundary) >= p.codecs.size()) return std::nullopt;
        const auto& choices = p.codecs[static_cast<size_t>(boundary)];
        auto found = std::find_if(choices.begin(), choices.end(),
                                  [&](const auto& c) { return c.name == run.hops[h].codec; });
        if (found == choices.end()) return std::nullopt;
        option = static_cast<int>(found - choices.begin()) + 1;
      }
      options.push_back(option);
    }
    auto c = plan::Evaluate(p, stages, options);
    if (!plan::Satisfies(p, c)) return std::nullopt;
    return c;
  }

  // Whether `layout` was left less than kMeasuredVetoMs ago measuring no faster than the current
  // chain measures over its last 3 s (at least 3 requests; a chain installed under 3 s ago with
  // fewer waits for them, an older one needs one). The estimates then predict a gain
  // that both plans' own requests, seconds apart, contradict. Seen in the demo: a 2-block stage
  // on the device at 0.2 core fits in one quota slice and runs at full speed, so the device read
  // 0.17x of its profile, the whole model was moved onto it, measured 45% slower, read 0.9x, and
  // moved back; 20 switches in 25 s. (Estimates cannot tell: under a quota, speed depends on how
  // long a stage runs.) A real change of conditions gets its switch once the veto expires.
  bool MeasuredWorse(const std::string& layout, Clock::time_point now) {
    const uint64_t chain = pipeline.current_chain();  // not under our mutex
    std::lock_guard<std::mutex> lock(mutex);
    auto it = left.find(layout);
    if (it == left.end()) return false;
    if (now - it->second.at > std::chrono::milliseconds(kMeasuredVetoMs)) {
      left.erase(it);
      return false;
    }
    int n = 0;
    const double current_ms = MeanLatency(chain, now - std::chrono::seconds(3), now, &n);
    if (n < 3) {
      // Too few requests to tell yet: a chain installed under 3 s ago waits for them (in the demo
      // the estimates flipped again 0.3 s after a switch back, and the flap went on); an older
      // one with so few (each request seconds long) has shown what it does.
      const bool young = !switches.empty() && now - switches.back().at < std::chrono::seconds(3);
      if (young) return true;
      if (n == 0 || current_ms > it->second.ms) return false;
    } else if (current_ms > it->second.ms) {
      return false;
    }
    if (vetoed_layout != layout || vetoed_at != it->second.at) {
      vetoed_layout = layout;
      vetoed_at = it->second.at;
      ++vetoes;
      note(fmt::format(
          "not switching to {}: predicted faster, but it measured {:.1f} ms when it was left "
          "{:.1f} s ago and the current plan measures {:.1f} ms",
          layout, it->second.ms, MsSince(it->second.at) / 1000, current_ms));
    }
    return true;
  }
  std::string vetoed_layout;  // under mutex: the last veto, noted once
  Clock::time_point vetoed_at;

  void Evaluate() {
    auto p = Estimated();
    p.top_k = 1;
    std::vector<plan::PlanCandidate> best;
    try {
      best = plan::PlanTopK(p);
    } catch (const Error& e) {
      note(fmt::format("adaptive re-plan failed: {}", e.what()));
      return;
    }
    const auto run = pipeline.current_plan();
    if (best.empty() || run.stages.empty()) return;
    auto next = plan::ToPlannedRun(p, best[0], 1);
    const std::string layout = plan::PlanKey(next);
    if (layout == plan::PlanKey(run)) {
      pending.clear();
      return;
    }
    auto current = Current(p, run);
    const double now_metric = current ? Metric(p, *current) : 0;
    const double gain =
        current ? (now_metric > 0 ? (now_metric - Metric(p, best[0])) / now_metric : 0) : 1.0;
    if (gain < o.switch_gain) {
      pending.clear();
      return;
    }
    // The current plan must stay beaten by the threshold for the whole window; which better plan
    // wins may change within it (near-equal alternatives), the best at its end is installed.
    const auto now = Clock::now();
    if (MeasuredWorse(layout, now)) {
      pending.clear();
      return;
    }
    if (pending.empty()) {
      pending = layout;
      pending_since = now;
      return;
    }
    pending = layout;
    // A large gain needs a shorter window (down to an eighth): noise makes small gains, and
    // every second on a plan that is twice too slow costs as much as the flap the window avoids.
    const double scale = std::clamp(gain > 0 ? o.switch_gain / gain : 1.0, 0.125, 1.0);
    if (now - pending_since < std::chrono::milliseconds(std::llround(o.switch_window_ms * scale)))
      return;
    pending.clear();

    std::string trigger;
    double before = 0;
    int before_n = 0;
    const uint64_t old_chain = pipeline.current_chain();
    {
      std::lock_guard<std::mutex> lock(mutex);
      trigger = Trigger();
      before = MeanLatency(old_chain, now - std::chrono::seconds(3), now, &before_n);
    }
    const double pending_ms = MsSince(pending_since);
    const auto started = Clock::now();
    bool staged = false;
    try {
      staged = pipeline.Install(next, o.standby);
    } catch (const Error& e) {
      note(fmt::format("adaptive switch to {} failed: {}", layout, e.what()));
      std::lock_guard<std::mutex> lock(mutex);
      for (const auto& s : next.stages)
        if (s.resource != local) down.insert(s.resource);
      return;
    }
    const double install_ms = MsSince(started);
    nlohmann::ordered_json entry = {
        {"time_unix_ms", UnixMs()},
        {"trigger", trigger},
        {"from", plan::PlanKey(run)},
        {"to", layout},
        {"predicted_from_ms", current ? nlohmann::json(current->latency_ms) : nlohmann::json()},
        {"predicted_to_ms", best[0].latency_ms},
        {"predicted_gain", gain},
        {"pending_ms", pending_ms},
        {"install_ms", install_ms},
        {"from_standby", staged},
        {"measured_before_ms", before_n > 0 ? nlohmann::json(before) : nlohmann::json()},
        {"measured_before_requests", before_n}};
    note(fmt::format("switched plan: {} -> {} ({}; predicted {:.1f}% better)", plan::PlanKey(run),
                     layout, trigger, gain * 100));
    std::lock_guard<std::mutex> lock(mutex);
    std::erase_if(left, [&](const auto& l) {  // expired: they veto nothing
      return now - l.second.at > std::chrono::milliseconds(kMeasuredVetoMs);
    });
    if (before_n >= 1) left[plan::PlanKey(run)] = {before, now};
    FillMeasuredGains(true);  // an earlier switch's window ends here
    switches.push_back({entry, pipeline.current_chain(), Clock::now(), false});
    snapshot = Snapshot();
  }

  // ---- the standby chain (the thread only) ----
  // The best plan that uses none of the current plan's workers (when it uses none: the best that
  // uses one) is kept loaded, so that the switch a failing link or worker calls for costs no load;
  // a switch keeps the plan it leaves loaded for the same reason. Chosen on the estimates; staged
  // once it has been the choice for kStandbyHoldMs, on a thread of its own.
  std::string standby_want;
  Clock::time_point standby_want_since;
  std::future<void> staging;
  uint64_t standby_loads = 0;  // under mutex
  // Under mutex: resources a standby load is busy on (far future while it runs), so live compute
  // samples it inflated are not taken for a slower machine (the demo's device, loading a session
  // at 0.2 core, read 2.9x and a switch away followed).
  std::map<std::string, Clock::time_point> busy_until;
  double standby_load_cpu_ms = 0;    // under mutex: this machine's CPU time of those loads
  Clock::time_point standby_next{};  // under mutex: no standby load before
  double standby_load_ms = 0;        // under mutex

  // The standby plan on the current estimates (nullopt: none, or the planner refused). First the
  // best plan on this machine alone, where the constraints allow one and the current plan uses a
  // worker (loaded already, it stays; UpdateStandby then loads nothing): it needs no link, so it is
  // the way out when the uplink drops (in the demo the plan on the other workers was staged, every
  // device link fell to 5 Mbit/s, and the switch to the local plan had to load it: 1 s of a 4 s
  // switch). Then the best plan that uses none of the current plan's workers (when it uses none:
  // the best that uses one).
  std::optional<plan::PlannedRun> ChooseStandby(const plan::PlannedRun& run) {
    auto p = Estimated();
    std::set<std::string> used;
    for (const auto& s : run.stages)
      if (s.resource != local) used.insert(s.resource);
    if (!used.empty()) {
      auto alone = p;
      std::erase_if(alone.resources, [&](const auto& r) { return r.name != local; });
      alone.top_k = 1;
      try {
        const auto plans =
            alone.resources.empty() ? std::vector<plan::PlanCandidate>{} : plan::PlanTopK(alone);
        if (!plans.empty()) {
          // Already loaded (staged or left by a switch): it stays the standby. Choosing another
          // here replaced it, and the next switch to it loaded it again (4.8 s in the demo).
          return plan::ToPlannedRun(alone, plans.front(), 1);
        }
      } catch (const Error&) {
        // The constraints need another tier: no plan on this machine alone.
      }
    }
    try {
      std::erase_if(p.resources, [&](const auto& r) { return used.count(r.name) > 0; });
      p.top_k = used.empty() ? 8 : 1;
      for (const auto& c : plan::PlanTopK(p)) {
        const bool remote = std::any_of(c.stages.begin(), c.stages.end(), [&](const auto& s) {
          return p.resources[static_cast<size_t>(s.resource)].name != local;
        });
        if (!used.empty() || remote) return plan::ToPlannedRun(p, c, 1);
      }
    } catch (const Error&) {
    }
    return std::nullopt;
  }

  // The first standby, loaded before the service answers anything (Adapter::Start), at normal
  // priority: loaded later on the idle-priority thread it may not be ready when the first change
  // comes (in the demo, 20 s of requests on the 0.2-core device starved it, and the switch that
  // needed it loaded it itself: 4.9 s of a 5.6 s switch).
  void StageFirstStandby() {
    if (!o.standby) return;
    const auto run = pipeline.current_plan();
    if (run.stages.empty()) return;
    const auto want = ChooseStandby(run);
    if (!want || plan::PlanKey(*want) == plan::PlanKey(run)) return;
    LoadStandby(*want, {});
  }

  // Loads `plan` as the standby (Pipeline::Stage) and accounts for it; `loading`: the resources
  // marked busy until it ends (their live compute samples meanwhile measure the load too).
  void LoadStandby(const plan::PlannedRun& plan, const std::vector<std::string>& loading) {
    const auto started = Clock::now();
    const double cpu_before = ThreadCpuMs();
    auto done = [&] {  // under mutex
      for (const auto& r : loading) busy_until[r] = Clock::now();
    };
    try {
      pipeline.Stage(plan);
      const double ms = MsSince(started), cpu_ms = ThreadCpuMs() - cpu_before;
      std::lock_guard<std::mutex> lock(mutex);
      done();
      ++standby_loads;
      standby_load_ms += ms;
      standby_load_cpu_ms += cpu_ms;
      // Charged by wall time at the probe duty. Not by CPU time: under a CPU quota 1.2 s of CPU
      // is 6 s of a 0.2-core device's whole allowance, and the demo's device, re-staging every
      // 25 s or so, served 15-30% slower than the same plan alone.
      standby_next = Clock::now() + std::chrono::milliseconds(std::llround(ms / o.probe_duty));
    } catch (const std::exception& e) {
      note(fmt::format("loading the standby plan {} failed: {}", plan::PlanKey(plan),
                       OneLine(e.what())));
      std::lock_guard<std::mutex> lock(mutex);
      done();
      standby_next = Clock::now() + std::chrono::seconds(10);
    }
  }

  void UpdateStandby() {
    if (!o.standby) return;
    if (staging.valid()) {
      if (staging.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
      staging.get();
    }
    const auto run = pipeline.current_plan();
    if (run.stages.empty()) return;
    const std::optional<plan::PlannedRun> want = ChooseStandby(run);
    if (!want) return;
    const std::string layout = plan::PlanKey(*want);
    const auto now = Clock::now();
    const auto staged = pipeline.staged_layouts();
    if (std::find(staged.begin(), staged.end(), layout) != staged.end() ||
        layout == plan::PlanKey(run)) {
      standby_want.clear();
      return;
    }
    if (layout != standby_want) {
      standby_want = layout;
      standby_want_since = now;
    }
    // The first standby is loaded at once; replacing one waits for the choice to hold, and for the
    // duty cycle: on a slow device a session takes seconds of its CPU (8 s for resnet18 at 0.2
    // core), which requests and probes would otherwise lose again and again. (The chain a switch
    // left stays loaded besides: Install's keep_previous.)
    Clock::time_point next;
    {
      std::lock_guard<std::mutex> lock(mutex);
      next = standby_next;
    }
    if (now < next ||
        (!staged.empty() && now - standby_want_since < std::chrono::milliseconds(kStandbyHoldMs)))
      return;
    standby_want.clear();
    std::vector<std::string> loading;  // where Stage loads a segment (or a session, here)
    for (const auto& st : want->stages)
      if (st.last_block >= st.first_block || st.resource != local) loading.push_back(st.resource);
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (const auto& r : loading) busy_until[r] = Clock::time_point::max();
    }
    staging = std::async(std::launch::async, [this, plan = *want, loading] {
      // Lowest priority among this process's threads: the session it builds may take seconds of
      // a slow device's CPU, which requests should not wait behind (in the demo, latency in the
      // 6 s a standby load of resnet18 took at 0.2 core rose from 75 to 100-300 ms).
      sched_param idle{};
      ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle);
      LoadStandby(plan, loading);
    });
  }

  // ---- background probes (the thread only) ----
  std::map<std::string, std::unique_ptr<deploy::WorkerClient>> clients;
  std::map<std::string, Clock::time_point> compute_due;
  std::map<LinkKey, Clock::time_point> ping_due, bandwidth_due;
  Clock::time_point last_probe_round{};

  deploy::WorkerClient& Client(const std::string& resource) {
    auto& c = clients[resource];
    if (!c) {
      auto connect = pipeline.options().connect;
      connect.timeout_ms = std::min(connect.timeout_ms, 10000);
      c = std::make_unique<deploy::WorkerClient>(pipeline.options().workers.at(resource), connect);
    }
    return *c;
  }

  bool LiveRecently(const std::map<std::string, Clock::time_point>& m, const std::string& k) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = m.find(k);
    return it != m.end() && MsSince(it->second) < kLiveFreshMs;
  }

  // The blocks the best plan that uses `resource` would give it, under the current estimates,
  // widened to a third of the model's time: a short range is mostly per-call overhead, and the
  // ratio scales every block of the resource. This machine: from block 0.
  std::optional<std::pair<int, int>> CandidateRange(const std::string& resource) {
    std::optional<std::pair<int, int>> seed;
    if (resource == local) {
      seed = std::make_pair(0, 0);
    } else {
      auto p = Estimated();
      auto r = std::find_if(p.resources.begin(), p.resources.end(),
                            [&](const auto& x) { return x.name == resource; });
      if (r == p.resources.end()) {  // down: probe it where the base problem would use it
        p = base;
        r = std::find_if(p.resources.begin(), p.resources.end(),
                         [&](const auto& x) { return x.name == resource; });
      }
      if (r == p.resources.end()) return std::nullopt;
      const size_t tier = static_cast<size_t>(r->tier);
      if (p.criteria.size() <= tier) p.criteria.resize(p.tiers.size());
      auto& c = p.criteria[tier];
      if (c.must_be_unused) return std::nullopt;
      if (!c.only_resources.empty() && std::find(c.only_resources.begin(), c.only_resources.end(),
                                                 resource) == c.only_resources.end())
        return std::nullopt;
      c.must_be_used = true;
      c.only_resources = {resource};
      p.top_k = 1;
      try {
        auto plans = plan::PlanTopK(p);
        if (!plans.empty())
          for (const auto& s : plans[0].stages)
            if (p.resources[static_cast<size_t>(s.resource)].name == resource &&
                s.last_block >= s.first_block)
              seed = std::make_pair(s.first_block, s.last_block);
      } catch (const Error&) {
      }
    }
    if (!seed) return std::nullopt;
    auto [first, last] = *seed;
    const int blocks = base.blocks;
    const double total = BaseMs(resource, 0, blocks - 1);
    while (BaseMs(resource, first, last) < total / 3 && (first > 0 || last < blocks - 1)) {
      if (last < blocks - 1)
        ++last;
      else
        --first;
    }
    return std::make_pair(first, last);
  }

  // `force`: a confirming probe, whatever the duty cycle and live samples say.
  void ProbeCompute(const std::string& resource, Clock::time_point now, bool force = false) {
    auto& due = compute_due[resource];
    if (!force && now < due) return;
    if (!force) {
      std::lock_guard<std::mutex> lock(mutex);
      auto live = live_resource.find(resource);
      if (live != live_resource.end() && MsSince(live->second) < kLiveFreshMs &&
          !down.count(resource))
        return;
    }
    due = now + std::chrono::milliseconds(1000);
    auto range = CandidateRange(resource);
    if (!range) return;
    const double base_ms = BaseMs(resource, range->first, range->second);
    try {
      const double ms = pipeline.ProbeCompute(resource, range->first, range->second, 10000);
      std::lock_guard<std::mutex> lock(mutex);
      auto& acc = probe_compute[resource];
      acc.first += ms;
      ++acc.second;
      if (base_ms >= 0.05 && Apply(slowdown[resource], ms / base_ms, "probe", resource))
        wake = true;
      if (down.erase(resource)) {
        note(fmt::format("{} answers again", resource));
        wake = true;
      }
      // At most `probe_duty` of one core: the next probe waits ms / duty, but no more than 2 s, so
      // a resource that was slow is seen fast again within 2 s (on the demo's edge at 0.15 core a
      // probe took 300 ms and the next came 6 s later). On a resource that slow the probes take
      // up to ms / 2000 of it while nothing of the served plan runs there.
      due = Clock::now() + std::chrono::milliseconds(
                               std::clamp<int64_t>(std::llround(ms / o.probe_duty), 250, 2000));
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      if (down.insert(resource).second) {
        note(fmt::format("compute probe of {} failed: {}", resource, OneLine(e.what())));
        wake = true;
      }
      due = Clock::now() + std::chrono::milliseconds(2000);
    }
  }

  void ProbeLink(const std::string& resource, Clock::time_point now, bool force = false) {
    const LinkKey key{local, resource};
    if (!base.links.count(key)) return;
    auto& ping = ping_due[key];
    if (!force && now >= ping) {
      ping = now + std::chrono::milliseconds(1000);
      try {
        const double ms = Client(resource).PingMs();
        std::lock_guard<std::mutex> lock(mutex);
        rtt[key].Add(ms, "probe");
        auto& history = pings[key];
        history.emplace_back(Clock::now(), ms);
        while (history.size() > 64 || MsSince(history.front().first) > 30000) history.pop_front();
      } catch (const std::exception&) {
        return;  // the compute probe marks it down
      }
    }
    auto& due = bandwidth_due[key];
    if (!force && (now < due || LiveRecently(live_link_names, resource))) return;
    double estimate, rtt_ms;
    {
      std::lock_guard<std::mutex> lock(mutex);
      estimate = MbpsOf(key);
      rtt_ms = FloorRtt(key);
      // Sized for the last sample: a probe that confirms a slowed link should not take as long as
      // a request on it, and one that confirms a faster link must be long enough to measure it.
      auto it = mbps.find(key);
      if (it != mbps.end() && !it->second.samples.empty()) estimate = it->second.samples.back();
    }
    // About 40 ms of the link at that rate, at least 48 KiB (past the shaper's burst and TCP's
    // first window), at most 1 MiB.
    const int64_t bytes =
        std::clamp<int64_t>(std::llround(estimate * 1e6 / 8 * 0.04), 48 << 10, 1 << 20);
    try {
      const double ms = Client(resource).UploadMs(bytes, 10000);
      std::lock_guard<std::mutex> lock(mutex);
      auto& acc = probe_bytes[key];
      acc.first += bytes;
      ++acc.second;
      const double transfer_ms = ms - rtt_ms;
      if (transfer_ms > 0.2) {
        const double sample = static_cast<double>(bytes) * 8 / (transfer_ms * 1000);
        if (Apply(mbps[key], sample, "probe", "link:" + resource)) wake = true;
      }
      // At most `probe_duty` of the link: the next probe waits (its time at the estimated rate) /
      // duty. Not its measured time: on a link our requests keep busy a probe waits behind their
      // bytes, and in the demo one such 5 Mbit/s probe put the next one 12 s away, the estimate
      // aged past --max-estimate-age-ms and fell back to the stored 95 Mbit/s. At most half that
      // age, so a probed link's estimate never expires.
      const double expected_ms =
          rtt_ms + static_cast<double>(bytes) * 8 / (std::max(MbpsOf(key), 1e-3) * 1000);
      due = Clock::now() + std::chrono::milliseconds(
                               std::clamp<int64_t>(std::llround(expected_ms / o.probe_duty), 500,
                                                   std::max<int64_t>(500, o.max_age_ms / 2)));
    } catch (const std::exception&) {
      due = Clock::now() + std::chrono::milliseconds(2000);
    }
  }
  // Links by their far end, for LiveRecently (the local end is always `local`).
  std::map<std::string, Clock::time_point> live_link_names;

  void Loop() {
    auto next_eval = Clock::now() + std::chrono::milliseconds(o.replan_ms);
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop) {
      cv.wait_for(lock, std::chrono::milliseconds(50), [this] { return stop || wake; });
      if (stop) break;
      for (const auto& [key, at] : live_link)
        if (key.first == local) live_link_names[key.second] = at;
      const bool woken = wake;
      wake = false;
      std::vector<std::string> to_confirm;
      // While a switch is pending its window closes at the next evaluations: no confirming probes.
      for (const auto& what : pending.empty() ? confirm : std::set<std::string>{}) {
        auto& at = confirmed_at[what];
        if (MsSince(at) < kConfirmMs) continue;
        at = Clock::now();
        to_confirm.push_back(what);
      }
      confirm.clear();
      lock.unlock();
      for (const auto& what : to_confirm) {
        if (what.rfind("link:", 0) == 0)
          ProbeLink(what.substr(5), Clock::now(), true);
        else if (what == local || pipeline.options().workers.count(what))
          ProbeCompute(what, Clock::now(), true);
      }
      // Evaluate before the routine probes: they may take a while (a compute probe on a slowed
      // machine, an upload on a slowed link), and a pending switch should not wait for them.
      auto now = Clock::now();
      if (woken || !to_confirm.empty() || now >= next_eval) {
        Evaluate();
        now = Clock::now();
        // While a better plan is pending, look again soon so the window closes on time.
        next_eval =
            now + std::chrono::milliseconds(
                      pending.empty() ? o.replan_ms : std::clamp(o.switch_window_ms / 8, 25, 125));
        UpdateStandby();
      }
      // Routine probes until the next evaluation is due (the rest at the next turn). While a switch
      // is pending they wait, so its window closes on time (one upload probe on a saturated slow
      // link took a second), but a round runs at least every kPendingProbeHoldMs: a gain that keeps
      // coming and going near the threshold must not starve them, or estimates 15 s old fall back
      // to the profile (seen in the demo: a 5 Mbit/s link read as its stored 95, and a switch onto
      // it).
      const bool hold = !pending.empty() && MsSince(last_probe_round) < kPendingProbeHoldMs;
      if (!hold) last_probe_round = Clock::now();
      for (const auto& r : base.resources) {
        if (hold || Clock::now() >= next_eval) break;
        if (r.name == local) {
          ProbeCompute(r.name, Clock::now());
          continue;
        }
        if (!pipeline.options().workers.count(r.name)) continue;
        ProbeLink(r.name, Clock::now());
        ProbeCompute(r.name, Clock::now());
      }
      lock.lock();
    }
  }
};

Adapter::Adapter(AdaptOptions options, deploy::Pipeline& pipeline, plan::PlanProblem base,
                 NoteFn note)
    : impl_(
          std::make_unique<Impl>(std::move(options), pipeline, std::move(base), std::move(note))) {
  impl_->o.Validate();
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->snapshot = impl_->Snapshot();
}

Adapter::~Adapter() { Stop(); }

void Adapter::Start() {
  if (!impl_->o.adapt || impl_->thread.joinable()) return;
  impl_->StageFirstStandby();
  impl_->thread = std::thread([this] { impl_->Loop(); });
}

void Adapter::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->staging.valid()) impl_->staging.wait();
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->FillMeasuredGains(true);
}

void Adapter::Observe(const deploy::ChainResult& result) { impl_->Observe(result); }

nlohmann::json Adapter::Switches() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : impl_->switches) out.push_back(nlohmann::json::parse(s.entry.dump()));
  return out;
}

std::string Adapter::MetricsText() const {
  const auto& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto now = Clock::now();
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  line(
      "# HELP scission_resource_slowdown Stage compute over its profile: median of the last 5 "
      "samples, live or probe (1 = as benchmarked).");
  line("# TYPE scission_resource_slowdown gauge");
  for (const auto& [name, e] : s.slowdown) {
    line(fmt::format("scission_resource_slowdown{{resource=\"{}\",source=\"{}\"}} {}",
                     PromLabel(name), e.source, e.Median()));
    line(fmt::format("scission_resource_slowdown_age_seconds{{resource=\"{}\"}} {}",
                     PromLabel(name), Seconds(now - e.updated)));
  }
  line(
      "# HELP scission_link_bandwidth_mbps Link bandwidth: bytes over (transfer time - RTT), from "
      "requests or upload probes; median of the last 5.");
  line("# TYPE scission_link_bandwidth_mbps gauge");
  for (const auto& [key, e] : s.mbps) {
    const std::string link = PromLabel(key.first + "->" + key.second);
    line(fmt::format("scission_link_bandwidth_mbps{{link=\"{}\",source=\"{}\"}} {}", link, e.source,
                     e.Median()));
    line(fmt::format("scission_link_bandwidth_age_seconds{{link=\"{}\"}} {}", link,
                     Seconds(now - e.updated)));
  }
  line("# HELP scission_link_rtt_ms Link round-trip time: minimum of the last 5 pings.");
  line("# TYPE scission_link_rtt_ms gauge");
  for (const auto& [key, e] : s.rtt) {
    const std::string link = PromLabel(key.first + "->" + key.second);
    line(fmt::format("scission_link_rtt_ms{{link=\"{}\"}} {}", link, e.Min()));
    line(fmt::format("scission_link_rtt_age_seconds{{link=\"{}\"}} {}", link,
                     Seconds(now - e.updated)));
  }
  line("# HELP scission_probe_compute_seconds_total Worker compute spent on background probes.");
  line("# TYPE scission_probe_compute_seconds_total counter");
  for (const auto& [name, acc] : s.probe_compute)
    line(fmt::format("scission_probe_compute_seconds_total{{resource=\"{}\"}} {}", PromLabel(name),
                     acc.first / 1000));
  line("# HELP scission_probe_bytes_total Bytes sent by background link probes.");
  line("# TYPE scission_probe_bytes_total counter");
  for (const auto& [key, acc] : s.probe_bytes)
    line(fmt::format("scission_probe_bytes_total{{link=\"{}\"}} {}",
                     PromLabel(key.first + "->" + key.second), acc.first));
  line("# HELP scission_resource_down Workers left out of plans (a probe or install failed).");
  line("# TYPE scission_resource_down gauge");
  for (const auto& r : s.base.resources)
    if (r.tier > 0)
      line(fmt::format("scission_resource_down{{resource=\"{}\"}} {}", PromLabel(r.name),
                       s.down.count(r.name) ? 1 : 0));
  line(
      "# HELP scission_standby_loads_total Standby plans loaded ahead of a switch, and their load "
      "time.");
  line("# TYPE scission_standby_loads_total counter");
  line(fmt::format("scission_standby_loads_total {}", s.standby_loads));
  line(fmt::format("scission_standby_load_seconds_total {}", s.standby_load_ms / 1000));
  line(fmt::format("scission_standby_load_cpu_seconds_total {}", s.standby_load_cpu_ms / 1000));
  line(
      "# HELP scission_standby_plan Plans kept loaded for a switch besides the current one (value "
      "1): the one a switch left, the one staged.");
  line("# TYPE scission_standby_plan gauge");
  for (const auto& staged : s.pipeline.staged_layouts())
    line(fmt::format("scission_standby_plan{{layout=\"{}\"}} 1", PromLabel(staged)));
  line("# HELP scission_adaptive_switches_total Plan switches made by the adaptive re-planner.");
  line("# TYPE scission_adaptive_switches_total counter");
  line(fmt::format("scission_adaptive_switches_total {}", s.switches.size()));
  line(
      "# HELP scission_adaptive_vetoes_total Switches the estimates called for but refused: the "
      "plan was left seconds before measuring no faster than the current one.");
  line("# TYPE scission_adaptive_vetoes_total counter");
  line(fmt::format("scission_adaptive_vetoes_total {}", s.vetoes));
  return out;
}

}  // namespace scission::serve
