// Keeps a served split fit for the conditions it runs in (issue 9, DESIGN.md "Adaptive serving").
// Every answered request updates estimates of each resource's speed relative to its profile (the
// slowdown: measured stage compute over the profile's) and of each link's bandwidth and RTT.
// Resources and links the current plan leaves idle are re-measured in the background at a bounded
// duty cycle: a compute probe of the blocks the best plan using that resource would give it (the
// worker makes the inputs, so no activation crosses the link) and an upload probe of the link.
// The planner runs on the estimates periodically and on a detected change; a plan whose predicted
// objective beats the current one's by the threshold at every evaluation of a sustained window is
// installed make-before-break (deploy::Pipeline::Install). Every plan is searched under the
// served request's own constraints, so privacy, criteria and caps hold for each one.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deploy/pipeline.h"
#include "plan/problem.h"

namespace scission::serve {

struct AdaptOptions {
  bool adapt = true;            // false: measure only, never switch, no background probes
  int replan_ms = 1000;         // periodic re-plan
  double switch_gain = 0.10;    // predicted improvement of the objective needed to switch
  int switch_window_ms = 1000;  // ... at every evaluation over this long
  double probe_duty = 0.05;     // background probes: fraction of one core per resource and of
                                // each link's estimated bandwidth
  int max_age_ms = 15000;       // older estimates fall back to the profile / stored link
  bool standby = true;          // keep the best plan avoiding the current workers loaded
  std::string switch_log;       // JSON Lines file, one switch per line ("" = none)
  void Validate() const;        // BadInput naming the flag
};

class Adapter {
 public:
  using NoteFn = std::function<void(const std::string&)>;
  // `base` is the problem the served plan came from (profiles as benchmarked, links as probed,
  // the request's constraints, only the resources this service can reach).
  Adapter(AdaptOptions options, deploy::Pipeline& pipeline, plan::PlanProblem base, NoteFn note);
  ~Adapter();
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  // Loads the first standby plan (unless --no-standby; this may take seconds on a slow machine),
  // then starts the background thread. Nothing when !adapt.
  void Start();
  void Stop();

  // One answered request: its chain's plan and timings.
  void Observe(const deploy::ChainResult& result);
  // Prometheus text: estimates with their age, probe overhead, switches.
  std::string MetricsText() const;
  // Every switch so far, oldest first (the JSON Lines entries).
  nlohmann::json Switches() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scission::serve
