#include "serve/adapter.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "deploy/client.h"
#include "plan/document.h"
#include "plan/planner.h"

namespace scission::serve {

namespace {

using Clock = std::chrono::steady_clock;
using LinkKey = std::pair<std::string, std::string>;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The last few samples of one quantity: the median follows a step within three samples and
// ignores a single outlier; `min` serves RTTs (queueing only ever adds).
struct Estimate {
  std::deque<double> samples;
  Clock::time_point updated{};
  std::string source;  // "live" or "probe"
  void Add(double v, const char* from) {
    samples.push_back(v);
    if (samples.size() > 5) samples.pop_front();
    updated = Clock::now();
    source = from;
  }
  bool Fresh(int max_age_ms) const { return !samples.empty() && MsSince(updated) <= max_age_ms; }
  double Median() const {
    std::vector<double> v(samples.begin(), samples.end());
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    return v[v.size() / 2];
  }
  double Min() const { return *std::min_element(samples.begin(), samples.end()); }
};

std::string Escape(const std::string& label) {
  std::string out;
  for (char c : label) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

constexpr int64_t kMinLiveBytes = 32 << 10;  // smaller transfers say little about bandwidth
constexpr int kLiveFreshMs = 2000;           // a live sample this recent needs no probe

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

  // A sample that moves an estimate by more than a third wakes the planner early.
  static bool Moves(const Estimate& e, double sample) {
    if (e.samples.empty()) return false;
    double m = e.Median();
    return m > 0 && std::fabs(sample / m - 1) > 0.33;
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
        auto& e = slowdown[s.resource];
        changed |= Moves(e, sample);
        e.Add(sample, "live");
        live_resource[s.resource] = now;
      }
    }
    // Each hop's time carries its bytes forward and the model's outputs back along the chain.
    for (size_t h = 0; h < r.hop_ms.size() && h < plan.hops.size(); ++h) {
      const auto& hop = plan.hops[h];
      const LinkKey key{hop.from, hop.to};
      const int64_t bytes = hop.bytes + returned;
      const double transfer_ms = r.hop_ms[h] - RttOf(key);
      if (bytes < kMinLiveBytes || transfer_ms < 0.2) continue;
      double sample = static_cast<double>(bytes) * 8 / (transfer_ms * 1000);
      auto& e = mbps[key];
      changed |= Moves(e, sample);
      e.Add(sample, "live");
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
    auto c = plan::Evaluate(p, stages);
    if (!plan::Satisfies(p, c)) return std::nullopt;
    return c;
  }

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
    const std::string layout = plan::LayoutText(next);
    if (layout == plan::LayoutText(run)) {
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
    if (pending.empty()) {
      pending = layout;
      pending_since = now;
      return;
    }
    pending = layout;
    if (now - pending_since < std::chrono::milliseconds(o.switch_window_ms)) return;
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
    const auto started = Clock::now();
    try {
      pipeline.Install(next);
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
        {"from", plan::LayoutText(run)},
        {"to", layout},
        {"predicted_from_ms", current ? nlohmann::json(current->latency_ms) : nlohmann::json()},
        {"predicted_to_ms", best[0].latency_ms},
        {"predicted_gain", gain},
        {"pending_ms", MsSince(pending_since)},
        {"install_ms", install_ms},
        {"measured_before_ms", before_n > 0 ? nlohmann::json(before) : nlohmann::json()},
        {"measured_before_requests", before_n}};
    note(fmt::format("switched plan: {} -> {} ({}; predicted {:.1f}% better)",
                     plan::LayoutText(run), layout, trigger, gain * 100));
    std::lock_guard<std::mutex> lock(mutex);
    FillMeasuredGains(true);  // an earlier switch's window ends here
    switches.push_back({entry, pipeline.current_chain(), Clock::now(), false});
    snapshot = Snapshot();
  }

  // ---- background probes (the thread only) ----
  std::map<std::string, std::unique_ptr<deploy::WorkerClient>> clients;
  std::map<std::string, Clock::time_point> compute_due;
  std::map<LinkKey, Clock::time_point> ping_due, bandwidth_due;

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

  void ProbeCompute(const std::string& resource, Clock::time_point now) {
    auto& due = compute_due[resource];
    if (now < due) return;
    {
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
      if (base_ms >= 0.05) {
        auto& e = slowdown[resource];
        if (Moves(e, ms / base_ms)) wake = true;
        e.Add(ms / base_ms, "probe");
      }
      if (down.erase(resource)) {
        note(fmt::format("{} answers again", resource));
        wake = true;
      }
      // At most `probe_duty` of one core: the next probe waits ms / duty.
      due = Clock::now() +
            std::chrono::milliseconds(std::max<int64_t>(250, std::llround(ms / o.probe_duty)));
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      if (down.insert(resource).second) {
        note(fmt::format("compute probe of {} failed: {}", resource, OneLine(e.what())));
        wake = true;
      }
      due = Clock::now() + std::chrono::milliseconds(2000);
    }
  }

  void ProbeLink(const std::string& resource, Clock::time_point now) {
    const LinkKey key{local, resource};
    if (!base.links.count(key)) return;
    auto& ping = ping_due[key];
    if (now >= ping) {
      ping = now + std::chrono::milliseconds(1000);
      try {
        const double ms = Client(resource).PingMs();
        std::lock_guard<std::mutex> lock(mutex);
        rtt[key].Add(ms, "probe");
      } catch (const std::exception&) {
        return;  // the compute probe marks it down
      }
    }
    auto& due = bandwidth_due[key];
    if (now < due || LiveRecently(live_link_names, resource)) return;
    double estimate, rtt_ms;
    {
      std::lock_guard<std::mutex> lock(mutex);
      estimate = MbpsOf(key);
      rtt_ms = RttOf(key);
    }
    // About 40 ms of the link at its estimated rate, at least 48 KiB (past the shaper's burst
    // and TCP's first window), at most 2 MiB.
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
        auto& e = mbps[key];
        if (Moves(e, sample)) wake = true;
        e.Add(sample, "probe");
      }
      // At most `probe_duty` of the link: the next probe waits ms / duty.
      due = Clock::now() +
            std::chrono::milliseconds(std::max<int64_t>(500, std::llround(ms / o.probe_duty)));
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
      lock.unlock();
      auto now = Clock::now();
      for (const auto& r : base.resources) {
        if (r.name == local) {
          ProbeCompute(r.name, Clock::now());
          continue;
        }
        if (!pipeline.options().workers.count(r.name)) continue;
        ProbeLink(r.name, now);
        ProbeCompute(r.name, Clock::now());
      }
      now = Clock::now();
      if (woken || now >= next_eval) {
        Evaluate();
        now = Clock::now();
        // While a better plan is pending, look again soon so the window closes on time.
        next_eval =
            now + std::chrono::milliseconds(
                      pending.empty() ? o.replan_ms : std::clamp(o.switch_window_ms / 4, 50, 250));
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
  impl_->thread = std::thread([this] { impl_->Loop(); });
}

void Adapter::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
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
    line(fmt::format("scission_resource_slowdown{{resource=\"{}\",source=\"{}\"}} {}", Escape(name),
                     e.source, e.Median()));
    line(fmt::format("scission_resource_slowdown_age_seconds{{resource=\"{}\"}} {}", Escape(name),
                     Seconds(now - e.updated)));
  }
  line(
      "# HELP scission_link_bandwidth_mbps Link bandwidth: bytes over (transfer time - RTT), from "
      "requests or upload probes; median of the last 5.");
  line("# TYPE scission_link_bandwidth_mbps gauge");
  for (const auto& [key, e] : s.mbps) {
    const std::string link = Escape(key.first + "->" + key.second);
    line(fmt::format("scission_link_bandwidth_mbps{{link=\"{}\",source=\"{}\"}} {}", link, e.source,
                     e.Median()));
    line(fmt::format("scission_link_bandwidth_age_seconds{{link=\"{}\"}} {}", link,
                     Seconds(now - e.updated)));
  }
  line("# HELP scission_link_rtt_ms Link round-trip time: minimum of the last 5 pings.");
  line("# TYPE scission_link_rtt_ms gauge");
  for (const auto& [key, e] : s.rtt) {
    const std::string link = Escape(key.first + "->" + key.second);
    line(fmt::format("scission_link_rtt_ms{{link=\"{}\"}} {}", link, e.Min()));
    line(fmt::format("scission_link_rtt_age_seconds{{link=\"{}\"}} {}", link,
                     Seconds(now - e.updated)));
  }
  line("# HELP scission_probe_compute_seconds_total Worker compute spent on background probes.");
  line("# TYPE scission_probe_compute_seconds_total counter");
  for (const auto& [name, acc] : s.probe_compute)
    line(fmt::format("scission_probe_compute_seconds_total{{resource=\"{}\"}} {}", Escape(name),
                     acc.first / 1000));
  line("# HELP scission_probe_bytes_total Bytes sent by background link probes.");
  line("# TYPE scission_probe_bytes_total counter");
  for (const auto& [key, acc] : s.probe_bytes)
    line(fmt::format("scission_probe_bytes_total{{link=\"{}\"}} {}",
                     Escape(key.first + "->" + key.second), acc.first));
  line("# HELP scission_resource_down Workers left out of plans (a probe or install failed).");
  line("# TYPE scission_resource_down gauge");
  for (const auto& r : s.base.resources)
    if (r.tier > 0)
      line(fmt::format("scission_resource_down{{resource=\"{}\"}} {}", Escape(r.name),
                       s.down.count(r.name) ? 1 : 0));
  line("# HELP scission_adaptive_switches_total Plan switches made by the adaptive re-planner.");
  line("# TYPE scission_adaptive_switches_total counter");
  line(fmt::format("scission_adaptive_switches_total {}", s.switches.size()));
  return out;
}

}  // namespace scission::serve
