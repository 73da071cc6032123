#include "deploy/testbed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
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
std::string CgroupDir(const std::string& host) {
  return std::string(kCgroupRoot) + "/scission-demo-" + host;
}

void CheckHost(const std::string& host) {
  for (const char* h : kHosts)
    if (host == h) return;
  throw BadInput("test bed: unknown host '{}' (device, edge or cloud)", host);
}
void CheckMbps(const std::string& host, double mbps) {
  if (!(mbps >= 0.001 && mbps <= 100000))
    throw BadInput("test bed: the {} link rate must be 0.001..100000 Mbit/s, got {}", host, mbps);
}
void CheckCores(const std::string& host, double cores) {
  if (!(cores == 0 || (cores >= 0.001 && cores <= 1024)))
    throw BadInput("test bed: the {} CPU share must be 0 (unlimited) or 0.001..1024 cores, got {}",
                   host, cores);
}

// Writes `text` to a kernel control file; false (errno says why) when the kernel refuses it,
// which std::ofstream would not report.
bool WriteControl(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits at most timeout_ms for a child to exit: its exit code, or nullopt while it runs. A child
// already reaped elsewhere (Cleanup on the signal thread) counts as killed.
std::optional<int> Reap(pid_t pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return ExitCode(status);
    if (r < 0 && errno != EINTR) return 128 + SIGKILL;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// SIGTERM to a process group, at most grace_ms to exit, then SIGKILL. Its exit code.
int Terminate(pid_t pid, int grace_ms) {
  ::kill(-pid, SIGTERM);
  if (auto code = Reap(pid, grace_ms)) return *code;
  ::kill(-pid, SIGKILL);
  return Reap(pid, 5000).value_or(128 + SIGKILL);
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
  CheckMbps("device", options_.device_mbps);
  CheckMbps("edge", options_.edge_mbps);
  CheckMbps("cloud", options_.cloud_mbps);
  CheckCores("device", options_.device_cpu_share);
  CheckCores("edge", options_.edge_cpu_share);
  CheckCores("cloud", options_.cloud_cpu_share);
  if (!options_.isolate) {
    fallback_reason_ = "isolation turned off (TestbedOptions::isolate); running on loopback";
    return false;
  }
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
    if (fs::exists(kCgroupRoot)) {
      for (const char* host : kHosts) {
        const std::string dir = CgroupDir(host);
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
          throw Internal("could not create the cgroup {}: {}", dir, std::strerror(errno));
        cgroups_[host] = dir;
      }
      ApplyCpuShare("device", options_.device_cpu_share);
      ApplyCpuShare("edge", options_.edge_cpu_share);
      ApplyCpuShare("cloud", options_.cloud_cpu_share);
    }
  } catch (const Error& e) {
    Cleanup();
    fallback_reason_ = std::string(e.what()) + "; running on loopback";
    return false;
  }
  isolated_ = true;
  return true;
}

void Testbed::ApplyCpuShare(const std::string& host, double cores) {
  auto it = cgroups_.find(host);
  if (it == cgroups_.end()) return;
  const std::string& dir = it->second;
  int64_t quota = -1;
  if (cores > 0) {
    // A short period makes throttling slow every run evenly, like a slower CPU, instead of
    // stalling a few runs for a long slice (which medians would hide). The quota cannot go
    // below 1 ms (nor the period above 1 s), so the period is the shortest that allows this share.
    int64_t period =
        std::clamp<int64_t>(static_cast<int64_t>(std::ceil(1000.0 / cores)), 1000, 1000000);
    quota = std::max<int64_t>(1000, std::llround(cores * period));
    if (!WriteControl(dir + "/cpu.cfs_period_us", std::to_string(period)))
      throw Internal("could not set the CPU period of {}: {}", dir, std::strerror(errno));
  }
  if (!WriteControl(dir + "/cpu.cfs_quota_us", std::to_string(quota)))
    throw Internal("could not set the CPU quota of {} to {} cores: {}", dir, cores,
                   std::strerror(errno));
  std::ifstream check(dir + "/cpu.cfs_quota_us");
  int64_t now = 0;
  check >> now;
  if (now != quota) throw Internal("the CPU quota of {} reads {}, not {}", dir, now, quota);
}

void Testbed::SetCpuShare(const std::string& host, double cores) {
  CheckHost(host);
  CheckCores(host, cores);
  (host == "device" ? options_.device_cpu_share
   : host == "edge" ? options_.edge_cpu_share
                    : options_.cloud_cpu_share) = cores;
  if (isolated_) ApplyCpuShare(host, cores);
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

void Testbed::SetLinkMbps(const std::string& host, double mbps) {
  CheckHost(host);
  CheckMbps(host, mbps);
  (host == "device" ? options_.device_mbps
   : host == "edge" ? options_.edge_mbps
                    : options_.cloud_mbps) = mbps;
  if (!isolated_) return;
  Shape(Namespace(host), Namespace(host) + "-a", mbps, true);
  Shape(kSwitch, Namespace(host) + "-b", mbps, true);
}

namespace {
// A port on 127.0.0.1 that nothing listens on now (the kernel's pick for port 0), so that two
// loopback test beds (two demos, parallel tests) never share one; 0 when none can be had.
int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  ::close(fd);
  return port;
}
}  // namespace

std::string Testbed::Address(const std::string& host) const {
  if (isolated_) return fmt::format("169.254.77.{}:50061", Octet(host));
  std::lock_guard<std::mutex> lock(mutex_);
  int& port = loopback_ports_[host];
  if (port == 0) port = FreeLoopbackPort();
  if (port == 0) port = 50061 + std::stoi(Octet(host));  // the old fixed ports, as a last resort
  return fmt::format("127.0.0.1:{}", port);
}

std::vector<std::string> Testbed::Prefix(const std::string& host, bool tool) const {
  std::vector<std::string> argv;
  if (isolated_) argv = {"ip", "netns", "exec", Namespace(host)};
  if (!tool) argv.push_back(options_.binary);
  return argv;
}

pid_t Testbed::Spawn(const std::string& host, const std::vector<std::string>& args, bool tool,
                     const std::string& out_path, const std::string& err_path,
                     bool in_host_cgroup) {
  CheckHost(host);
  std::vector<std::string> argv = Prefix(host, tool);
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  std::string procs;
  if (auto it = cgroups_.find(host); isolated_ && in_host_cgroup && it != cgroups_.end())
    procs = it->second + "/cgroup.procs";
  // Opened (and truncated) here, so once Start returns, its output files are this process's.
  const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || err < 0 || in < 0) {
    const int why = errno;
    for (int fd : {out, err, in})
      if (fd >= 0) ::close(fd);
    throw Internal("test bed: cannot open {} or {}: {}", out_path, err_path, std::strerror(why));
  }
  // Between fork and exec only async-signal-safe calls: the caller may have other threads.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (!procs.empty()) {
      // "0" is the writing process itself; it joins before exec, so nothing runs unquota'd.
      int fd = ::open(procs.c_str(), O_WRONLY);
      if (fd < 0 || ::write(fd, "0", 1) != 1) {
        static const char kWhy[] = "test bed: could not join the host's cgroup\n";
        [[maybe_unused]] auto n = ::write(2, kWhy, sizeof kWhy - 1);
        ::_exit(126);
      }
      ::close(fd);
    }
    ::execvp(raw[0], raw.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  for (int fd : {out, err, in}) ::close(fd);
  if (pid < 0) throw Internal("fork failed: {}", std::strerror(fork_errno));
  ::setpgid(pid, pid);  // also here, so a Stop right after Start finds the group
  return pid;
}

void Testbed::StartWorker(const std::string& host, const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"worker", "--listen", Address(host), "--resource",
                                   host,     "--tier",   host};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::string log = options_.log_dir + "/worker-" + host;
  pid_t pid = 0;
  {
    std::lock_guard lock(mutex_);
    pid = workers_[host] = Spawn(host, args, false, log + ".out", log + ".err", true);
  }
  // Wait until it answers Hello (from the host itself, so no link is involved).
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::lock_guard lock(mutex_);
      workers_.erase(host);
      throw Internal("worker on {} exited: {}", host, Slurp(log + ".err"));
    }
    if (Slurp(log + ".out").find("listening") != std::string::npos) return;
  }
  throw Internal("worker on {} did not start within 10 s", host);
}

CommandOutput Testbed::RunTool(const std::string& host, const std::vector<std::string>& argv) {
  return Exec(host, argv, false, true);
}

CommandOutput Testbed::Run(const std::string& host, const std::vector<std::string>& args,
                           bool in_host_cgroup) {
  return Exec(host, args, in_host_cgroup, false);
}

CommandOutput Testbed::Exec(const std::string& host, const std::vector<std::string>& args,
                            bool in_host_cgroup, bool tool) {
  std::string base;
  {
    std::lock_guard lock(mutex_);
    base = fmt::format("{}/cmd-{}-{}", options_.log_dir, host, spawn_counter_++);
  }
  pid_t pid = Spawn(host, args, tool, base + ".out", base + ".err", in_host_cgroup);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  CommandOutput r;
  r.exit_code = ExitCode(status);
  r.out = Slurp(base + ".out");
  r.err = Slurp(base + ".err");
  return r;
}

int Testbed::Start(const std::string& host, const std::vector<std::string>& args,
                   bool in_host_cgroup) {
  // Under the lock, so a Cleanup on another thread either sees this process or runs before it.
  std::lock_guard lock(mutex_);
  const int handle = next_handle_++;
  const std::string base = fmt::format("{}/bg-{}-{}", options_.log_dir, host, handle);
  Process p{-1, base + ".out", base + ".err"};
  p.pid = Spawn(host, args, false, p.out_path, p.err_path, in_host_cgroup);
  background_[handle] = p;
  return handle;
}

Testbed::Process Testbed::Find(int handle) const {
  std::lock_guard lock(mutex_);
  auto it = background_.find(handle);
  if (it == background_.end()) throw Internal("test bed: no background process {}", handle);
  return it->second;
}

std::string Testbed::Output(int handle) const { return Slurp(Find(handle).out_path); }

CommandOutput Testbed::Wait(int handle, int timeout_ms) {
  const Process p = Find(handle);
  CommandOutput r;
  if (auto code = Reap(p.pid, timeout_ms)) {
    r.exit_code = *code;
  } else {
    ::kill(-p.pid, SIGKILL);
    r.exit_code = Reap(p.pid, 5000).value_or(128 + SIGKILL);
  }
  {
    std::lock_guard lock(mutex_);
    background_.erase(handle);
  }
  r.out = Slurp(p.out_path);
  r.err = Slurp(p.err_path);
  return r;
}

CommandOutput Testbed::Stop(int handle, int grace_ms) {
  const Process p = Find(handle);
  CommandOutput r;
  r.exit_code = Terminate(p.pid, grace_ms);
  {
    std::lock_guard lock(mutex_);
    background_.erase(handle);
  }
  r.out = Slurp(p.out_path);
  r.err = Slurp(p.err_path);
  return r;
}

void Testbed::Cleanup() {
  std::vector<pid_t> pids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [host, pid] : workers_) pids.push_back(pid);
    for (const auto& [handle, p] : background_) pids.push_back(p.pid);
    workers_.clear();
    background_.clear();
  }
  // All at once, then one shared grace period of 3 s.
  for (pid_t pid : pids) ::kill(-pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (pid_t pid : pids) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!Reap(pid, std::max<int>(0, static_cast<int>(left.count())))) Terminate(pid, 0);
  }
  if (::geteuid() == 0 && options_.isolate) {
    // Processes of an earlier demo that was killed outright still live in its namespaces.
    for (const char* host : kHosts) {
      Sh("ip netns pids " + Namespace(host) + " | xargs -r kill -9");
      Sh("ip netns del " + Namespace(host));
    }
    Sh(std::string("ip netns del ") + kSwitch);
    for (const char* host : kHosts) {
      const std::string dir = CgroupDir(host);
      if (!fs::exists(dir)) continue;
      // Any process left in it (a killed run) is moved out before the directory goes; one that
      // is still exiting may keep it busy for a moment.
      for (int attempt = 0; attempt < 50; ++attempt) {
        std::ifstream procs(dir + "/cgroup.procs");
        for (std::string pid; std::getline(procs, pid);)
          WriteControl(std::string(kCgroupRoot) + "/cgroup.procs", pid);
        if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  cgroups_.clear();
  isolated_ = false;
}

}  // namespace scission::deploy
