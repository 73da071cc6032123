// A three-host test bed on one machine: network namespaces `sc-device`, `sc-edge`, `sc-cloud`
// joined through a bridge in `sc-switch` by veth pairs, each access link shaped both ways with
// `tc tbf`; each host's processes run in its own cgroup v1 (`scission-demo-<host>` under
// /sys/fs/cgroup/cpu) with a CPU quota that can change while they run. Addresses are link-local
// (169.254.77.0/24) and never leave the machine. Without root it degrades to loopback, unshaped
// and unquota'd: SetLinkMbps and SetCpuShare then only record the value (harmless no-ops), and
// so does SetCpuShare where /sys/fs/cgroup/cpu is missing (a cgroup v2 only machine).
// Everything it creates (namespaces, cgroups, workers, background processes) is removed by
// Cleanup() (also from the destructor; the demo calls it on SIGINT/SIGTERM).
// Thread safety: Cleanup() may run on another thread than the other calls (a signal watcher).
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace scission::deploy {

struct TestbedOptions {
  double device_mbps = 20;        // device <-> switch
  double edge_mbps = 200;         // edge <-> switch (so edge <-> cloud is 200)
  double cloud_mbps = 1000;       // cloud <-> switch
  double device_cpu_share = 0.5;  // CPU quota of the device, in cores (0 = unlimited)
  double edge_cpu_share = 0;      // of the edge, in cores (0 = unlimited)
  double cloud_cpu_share = 0;     // of the cloud, in cores (0 = unlimited)
  // false: loopback even as root, and Cleanup leaves the machine's namespaces and cgroups alone
  // (tests; a machine where another test bed is running).
  bool isolate = true;
  std::string binary;  // the scission executable (what Run, Start and StartWorker execute)
  std::string log_dir;
};

struct CommandOutput {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

class Testbed {
 public:
  explicit Testbed(const TestbedOptions& options);
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // Creates the namespaces, links, shaping and cgroups. Returns false (and says why in
  // fallback_reason()) when it must run on loopback instead.
  bool Setup();
  const std::string& fallback_reason() const { return fallback_reason_; }
  bool isolated() const { return isolated_; }

  // Changes a host's access link rate, both directions, in Mbit/s (0.001..100000; BadInput
  // otherwise, or for a host other than "device", "edge", "cloud").
  void SetLinkMbps(const std::string& host, double mbps);
  void SetDeviceMbps(double mbps) { SetLinkMbps("device", mbps); }
  // Changes a host's CPU quota, in cores (0 = unlimited, else 0.001..1024), for the processes
  // already in its cgroup too.
  void SetCpuShare(const std::string& host, double cores);
  // Address a host's worker listens on ("device", "edge", "cloud").
  std::string Address(const std::string& host) const;
  // Starts `scission worker` on a host (in its cgroup); returns when it answers.
  void StartWorker(const std::string& host, const std::vector<std::string>& extra_args);
  // Runs `scission ARGS` on a host, inside its namespace and, when `in_host_cgroup`, its cgroup
  // (an application client on the device should not be charged to the device's quota).
  CommandOutput Run(const std::string& host, const std::vector<std::string>& args,
                    bool in_host_cgroup = true);
  // Runs another program (argv[0] from PATH, e.g. curl) in a host's namespace, outside its
  // cgroup: how the demo reads a service's /metrics on the device.
  CommandOutput RunTool(const std::string& host, const std::vector<std::string>& argv);

  // `scission ARGS` on a host in the background (stdout and stderr to files in log_dir). Returns
  // a handle for Output, Wait and Stop; Wait or Stop releases it (Internal for an unknown one).
  int Start(const std::string& host, const std::vector<std::string>& args,
            bool in_host_cgroup = true);
  // Its stdout so far (to wait for a ready line).
  std::string Output(int handle) const;
  // Waits for it to exit, at most timeout_ms; then kills it (SIGKILL: exit_code 137).
  CommandOutput Wait(int handle, int timeout_ms);
  // SIGTERM, then waits at most grace_ms for it to exit, then SIGKILL. Returns what it printed.
  CommandOutput Stop(int handle, int grace_ms = 15000);

  void Cleanup();

 private:
  struct Process {
    pid_t pid = -1;
    std::string out_path, err_path;
  };
  // The command line's start on `host`: its namespace, then this binary (or, for RunTool, none).
  std::vector<std::string> Prefix(const std::string& host, bool tool = false) const;
  CommandOutput Exec(const std::string& host, const std::vector<std::string>& args,
                     bool in_host_cgroup, bool tool);
  pid_t Spawn(const std::string& host, const std::vector<std::string>& args, bool tool,
              const std::string& out_path, const std::string& err_path, bool in_host_cgroup);
  Process Find(int handle) const;
  void Shape(const std::string& ns, const std::string& dev, double mbps, bool change);
  void ApplyCpuShare(const std::string& host, double cores);

  TestbedOptions options_;
  bool isolated_ = false;
  std::string fallback_reason_;
  std::map<std::string, std::string> cgroups_;  // host -> cgroup directory (those created)
  mutable std::mutex mutex_;                    // guards the process tables below
  std::map<std::string, pid_t> workers_;
  mutable std::map<std::string, int> loopback_ports_;  // host -> port, chosen on first use
  std::map<int, Process> background_;
  int next_handle_ = 1;
  int spawn_counter_ = 0;
};

}  // namespace scission::deploy
