#include "deploy/testbed.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "deploy/client.h"

namespace scission::deploy {

namespace fs = std::filesystem;

namespace {

const char* kHosts[] = {"device", "edge", "cloud"};
constexpr const char* kSwitch = "sc-switch";
constexpr const char* kCgroupRoot = "/sys/fs/cgroup/cpu";

std::string Namespace(const std::string& host) { return "sc-" + host; }
std::string Octet(const std::string& host) {
  return host == "device" ? "1" : host == "edge" ? "2" : "3";
}

// Runs a command line quietly; returns its exit code.
int Sh(const std::string& command) {
  int status = std::system(("( " + command + " ) >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void MustSh(const std::string& command) {
  if (Sh(command) != 0) throw Internal("test bed set-up failed: {}", command);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Testbed::Testbed(const TestbedOptions& options) : options_(options) {
  fs::create_directories(options_.log_dir);
}

Testbed::~Testbed() { Cleanup(); }

bool Testbed::Setup() {
  if (::geteuid() != 0) {
    fallback_reason_ = "not root: no network namespaces, shaping or CPU quota; running on loopback";
    return false;
  }
  if (Sh("ip netns list") != 0 || Sh("tc -V") != 0) {
    fallback_reason_ = "iproute2 (ip, tc) missing: apt-get install iproute2; running on loopback";
    return false;
  }
  Cleanup();  // leftovers of an earlier, killed demo
  try {
    MustSh(fmt::format("ip netns add {}", kSwitch));
    MustSh(fmt::format("ip -n {} link add br0 type bridge", kSwitch));
    MustSh(fmt::format("ip -n {} link set br0 up", kSwitch));
    for (const char* host : kHosts) {
      std::string ns = Namespace(host), a = ns + "-a", b = ns + "-b";
      double mbps = std::string(host) == "device" ? options_.device_mbps
                    : std::string(host) == "edge" ? options_.edge_mbps
                                                  : options_.cloud_mbps;
      MustSh(fmt::format("ip netns add {}", ns));
      MustSh(fmt::format("ip link add {} type veth peer name {}", a, b));
      MustSh(fmt::format("ip link set {} netns {}", a, ns));
      MustSh(fmt::format("ip link set {} netns {}", b, kSwitch));
      MustSh(fmt::format("ip -n {} addr add 169.254.77.{}/24 dev {}", ns, Octet(host), a));
      MustSh(fmt::format("ip -n {} link set {} up", ns, a));
      MustSh(fmt::format("ip -n {} link set lo up", ns));
      MustSh(fmt::format("ip -n {} link set {} master br0 up", kSwitch, b));
      MustSh(fmt::format("ip -n {} link set {} gso_max_size 4096", ns, a));
      MustSh(fmt::format("ip -n {} link set {} gso_max_size 4096", kSwitch, b));
      Shape(ns, a, mbps, false);
      Shape(kSwitch, b, mbps, false);
    }
    cgroup_ = fmt::format("{}/scission-demo-device", kCgroupRoot);
    if (fs::exists(kCgroupRoot)) {
      fs::create_directories(cgroup_);
      // A short period makes throttling slow every run evenly, like a slower CPU, instead of
      // stalling a few runs for a long slice (which medians would hide). The quota cannot go
      // below 1 ms, so the period is the shortest that allows this share.
      int period = std::max(1000, static_cast<int>(std::ceil(1000.0 / options_.device_cpu_share)));
      std::ofstream(cgroup_ + "/cpu.cfs_period_us") << period;
      std::ofstream(cgroup_ + "/cpu.cfs_quota_us")
          << static_cast<int>(std::llround(options_.device_cpu_share * period));
      std::ifstream check(cgroup_ + "/cpu.cfs_quota_us");
      long quota = -1;
      check >> quota;
      if (quota <= 0) throw Internal("could not set the CPU quota of {}", cgroup_);
    } else {
      cgroup_.clear();
    }
  } catch (const Error& e) {
    Cleanup();
    fallback_reason_ = std::string(e.what()) + "; running on loopback";
    return false;
  }
  isolated_ = true;
  return true;
}

void Testbed::Shape(const std::string& ns, const std::string& dev, double mbps, bool change) {
  // A small bucket: a full one lets the first `burst` bytes after an idle period through at once,
  // which no real link does and which the probe (long transfers) cannot see. Segments are capped
  // at 4 KiB (gso_max_size) so a 8 KiB bucket never stalls a packet.
  int64_t burst = std::max<int64_t>(8 * 1024, static_cast<int64_t>(mbps * 1e6 / 8 / 1000));
  MustSh(fmt::format(
      "ip netns exec {} tc qdisc {} dev {} root tbf rate {}kbit burst {} latency 500ms", ns,
      change ? "change" : "add", dev, static_cast<int64_t>(std::llround(mbps * 1000)), burst));
}

void Testbed::SetDeviceMbps(double mbps) {
  options_.device_mbps = mbps;
  if (!isolated_) return;
  Shape(Namespace("device"), Namespace("device") + "-a", mbps, true);
  Shape(kSwitch, Namespace("device") + "-b", mbps, true);
}

std::string Testbed::Address(const std::string& host) const {
  if (isolated_) return fmt::format("169.254.77.{}:50061", Octet(host));
  return fmt::format("127.0.0.1:{}", 50061 + std::stoi(Octet(host)));
}

std::vector<std::string> Testbed::Prefix(const std::string& host) const {
  if (!isolated_) return {options_.binary};
  return {"ip", "netns", "exec", Namespace(host), options_.binary};
}

pid_t Testbed::Spawn(const std::string& host, const std::vector<std::string>& args,
                     const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> argv = Prefix(host);
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid < 0) throw Internal("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    if (isolated_ && host == "device" && !cgroup_.empty())
      std::ofstream(cgroup_ + "/cgroup.procs") << ::getpid();
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execvp(raw[0], raw.data());
    ::_exit(127);
  }
  return pid;
}

void Testbed::StartWorker(const std::string& host, const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"worker", "--listen", Address(host), "--resource",
                                   host,     "--tier",   host};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::string log = options_.log_dir + "/worker-" + host;
  workers_[host] = Spawn(host, args, log + ".out", log + ".err");
  // Wait until it answers Hello (from the host itself, so no link is involved).
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int status = 0;
    if (::waitpid(workers_[host], &status, WNOHANG) == workers_[host]) {
      workers_.erase(host);
      throw Internal("worker on {} exited: {}", host, Slurp(log + ".err"));
    }
    if (Slurp(log + ".out").find("listening") != std::string::npos) return;
  }
  throw Internal("worker on {} did not start within 10 s", host);
}

CommandOutput Testbed::Run(const std::string& host, const std::vector<std::string>& args) {
  std::string base = fmt::format("{}/cmd-{}-{}", options_.log_dir, host, spawn_counter_++);
  pid_t pid = Spawn(host, args, base + ".out", base + ".err");
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandOutput r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(base + ".out");
  r.err = Slurp(base + ".err");
  return r;
}

void Testbed::Cleanup() {
  for (auto& [host, pid] : workers_) ::kill(-pid, SIGTERM);
  for (auto& [host, pid] : workers_) {
    int status = 0;
    for (int i = 0; i < 30 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, WNOHANG);
  }
  workers_.clear();
  if (::geteuid() == 0) {
    // Processes of an earlier demo that was killed outright still live in its namespaces.
    for (const char* host : kHosts) {
      Sh("ip netns pids " + Namespace(host) + " | xargs -r kill -9");
      Sh("ip netns del " + Namespace(host));
    }
    Sh(std::string("ip netns del ") + kSwitch);
    std::string cg = std::string(kCgroupRoot) + "/scission-demo-device";
    if (fs::exists(cg)) {
      // Any process left in it (a killed run) is moved out before the directory goes.
      std::ifstream procs(cg + "/cgroup.procs");
      for (std::string pid; std::getline(procs, pid);)
        std::ofstream(std::string(kCgroupRoot) + "/cgroup.procs") << pid;
      ::rmdir(cg.c_str());
    }
  }
  isolated_ = false;
}

}  // namespace scission::deploy
