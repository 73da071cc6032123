// A three-host test bed on one machine: network namespaces `sc-device`, `sc-edge`, `sc-cloud`
// joined through a bridge in `sc-switch` by veth pairs, each access link shaped both ways with
// `tc tbf`; the device's processes run under a cgroup v1 CPU quota. Addresses are link-local
// (169.254.77.0/24) and never leave the machine. Without root it degrades to loopback, unshaped.
// Everything it creates is removed by Cleanup() (also from the destructor and on SIGINT/SIGTERM).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace scission::deploy {

struct TestbedOptions {
  double device_mbps = 20;        // device <-> switch
  double edge_mbps = 200;         // edge <-> switch (so edge <-> cloud is 200)
  double cloud_mbps = 1000;       // cloud <-> switch
  double device_cpu_share = 0.5;  // CPU quota of the device, in cores
  std::string binary;             // the scission executable
  std::string log_dir;
};

struct CommandOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class Testbed {
 public:
  explicit Testbed(const TestbedOptions& options);
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // Creates the namespaces, links, shaping and cgroup. Returns false (and says why in
  // fallback_reason()) when it must run on loopback instead.
  bool Setup();
  const std::string& fallback_reason() const { return fallback_reason_; }
  bool isolated() const { return isolated_; }

  // Changes the device access link's rate (both directions).
  void SetDeviceMbps(double mbps);
  // Address a host's worker listens on ("device", "edge", "cloud").
  std::string Address(const std::string& host) const;
  // Starts `scission worker` on a host; returns when it answers.
  void StartWorker(const std::string& host, const std::vector<std::string>& extra_args);
  // Runs `scission ARGS` on a host (inside its namespace and, for the device, its cgroup).
  CommandOutput Run(const std::string& host, const std::vector<std::string>& args);
  void Cleanup();

 private:
  std::vector<std::string> Prefix(const std::string& host) const;
  pid_t Spawn(const std::string& host, const std::vector<std::string>& args,
              const std::string& out_path, const std::string& err_path);
  void Shape(const std::string& ns, const std::string& dev, double mbps, bool change);

  TestbedOptions options_;
  bool isolated_ = false;
  std::string fallback_reason_;
  std::string cgroup_;
  std::map<std::string, pid_t> workers_;
  int spawn_counter_ = 0;
};

}  // namespace scission::deploy
