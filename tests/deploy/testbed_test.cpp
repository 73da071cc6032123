// The demo's test bed with /bin/sh as its "binary", so no scission process is involved.
// TestbedLoopback runs anywhere (isolation turned off, even as root). TestbedIsolated builds the
// real namespaces and cgroups: only as root, only when no other test bed is running on the
// machine (it would tear that one down), and it removes everything it made.
#include "deploy/testbed.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"

namespace scission::deploy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

TestbedOptions ShellOptions(const std::string& name, bool isolate) {
  TestbedOptions o;
  o.binary = "/bin/sh";
  o.log_dir = ::testing::TempDir() + "/testbed_" + name + "_" + std::to_string(::getpid());
  o.isolate = isolate;
  return o;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

TEST(TestbedLoopback, BackgroundProcessesAndRunsWithoutIsolation) {
  Testbed testbed(ShellOptions("loopback", false));
  EXPECT_FALSE(testbed.Setup());
  EXPECT_THAT(testbed.fallback_reason(), HasSubstr("loopback"));
  EXPECT_FALSE(testbed.isolated());
  // The live controls are no-ops on loopback, but still check their arguments.
  testbed.SetLinkMbps("edge", 50);
  testbed.SetDeviceMbps(5);
  testbed.SetCpuShare("cloud", 0.25);
  testbed.SetCpuShare("device", 0);
  EXPECT_THROW(testbed.SetLinkMbps("edge", 0), Error);
  EXPECT_THROW(testbed.SetLinkMbps("moon", 10), Error);
  EXPECT_THROW(testbed.SetCpuShare("edge", -1), Error);
  EXPECT_THROW(testbed.SetCpuShare("edge", 0.0001), Error);

  auto run = testbed.Run("device", {"-c", "echo out; echo err >&2; exit 3"}, false);
  EXPECT_EQ(run.exit_code, 3);
  auto tool = testbed.RunTool("edge", {"echo", "from", "path"});
  EXPECT_EQ(tool.exit_code, 0);
  EXPECT_EQ(tool.out, "from path\n");
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.err, "err\n");

  // Wait: a process that ends in time keeps its exit code and output.
  int quick = testbed.Start("edge", {"-c", "echo ready; sleep 0.2; echo done; exit 4"});
  auto done = testbed.Wait(quick, 10000);
  EXPECT_EQ(done.exit_code, 4);
  EXPECT_EQ(done.out, "ready\ndone\n");
  EXPECT_THROW(testbed.Wait(quick, 10), Error);  // the handle is released

  // Wait past its timeout kills it.
  auto begin = std::chrono::steady_clock::now();
  int slow = testbed.Start("cloud", {"-c", "echo started; sleep 30"});
  auto killed = testbed.Wait(slow, 300);
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL);
  EXPECT_LT(Seconds(begin), 10);

  // Stop: SIGTERM first, and what the process does on it is kept.
  int polite = testbed.Start("device", {"-c",
                                        "trap 'echo bye; exit 0' TERM; echo up; "
                                        "while true; do sleep 0.05; done"});
  for (int i = 0; i < 200 && testbed.Output(polite).find("up") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto stopped = testbed.Stop(polite, 5000);
  EXPECT_EQ(stopped.exit_code, 0);
  EXPECT_THAT(stopped.out, HasSubstr("bye"));

  // Stop of one that ignores SIGTERM: SIGKILL after the grace period.
  begin = std::chrono::steady_clock::now();
  int stubborn = testbed.Start("edge", {"-c", "trap '' TERM; echo up; sleep 30 & wait"});
  for (int i = 0; i < 200 && testbed.Output(stubborn).find("up") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(testbed.Stop(stubborn, 200).exit_code, 128 + SIGKILL);
  EXPECT_LT(Seconds(begin), 10);

  // Cleanup stops whatever still runs in the background.
  std::string pid_file = ::testing::TempDir() + "/testbed_bg_pid_" + std::to_string(::getpid());
  testbed.Start("cloud", {"-c", "echo $$ > " + pid_file + "; exec sleep 30"});
  for (int i = 0; i < 200 && ReadText(pid_file).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  pid_t left = std::atoi(ReadText(pid_file).c_str());
  ASSERT_GT(left, 0);
  testbed.Cleanup();
  EXPECT_NE(::kill(left, 0), 0) << "pid " << left << " survived Cleanup";
  std::filesystem::remove(pid_file);
}

TEST(TestbedIsolated, HostCgroupsLinkRatesAndCleanup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, tc, cgroups)";
  if (!std::filesystem::exists("/sys/fs/cgroup/cpu"))
    GTEST_SKIP() << "no cgroup v1 cpu controller at /sys/fs/cgroup/cpu";
  if (Shell("ip netns list 2>/dev/null").find("sc-") != std::string::npos)
    GTEST_SKIP() << "a test bed (sc-* namespaces) is in use on this machine; not disturbing it";
  auto options = ShellOptions("isolated", true);
  options.device_cpu_share = 0.5;
  options.edge_cpu_share = 2;
  {
    Testbed testbed(options);
    if (!testbed.Setup()) GTEST_SKIP() << "test bed unavailable: " << testbed.fallback_reason();
    const std::string root = "/sys/fs/cgroup/cpu/scission-demo-";
    EXPECT_EQ(ReadText(root + "device/cpu.cfs_period_us"), "2000\n");
    EXPECT_EQ(ReadText(root + "device/cpu.cfs_quota_us"), "1000\n");
    EXPECT_EQ(ReadText(root + "edge/cpu.cfs_quota_us"), "2000\n");
    EXPECT_EQ(ReadText(root + "cloud/cpu.cfs_quota_us"), "-1\n");

    // Live changes.
    testbed.SetCpuShare("cloud", 0.25);
    EXPECT_EQ(ReadText(root + "cloud/cpu.cfs_period_us"), "4000\n");
    EXPECT_EQ(ReadText(root + "cloud/cpu.cfs_quota_us"), "1000\n");
    testbed.SetCpuShare("device", 0);
    EXPECT_EQ(ReadText(root + "device/cpu.cfs_quota_us"), "-1\n");
    testbed.SetLinkMbps("edge", 50);
    EXPECT_THAT(Shell("ip netns exec sc-edge tc qdisc show dev sc-edge-a"), HasSubstr("50Mbit"));
    EXPECT_THAT(Shell("ip netns exec sc-switch tc qdisc show dev sc-edge-b"), HasSubstr("50Mbit"));

    // A process runs in its host's namespace and cgroup, or outside the cgroup when asked.
    auto in = testbed.Run("device", {"-c", "cat /proc/self/cgroup; ip -o addr show"});
    EXPECT_EQ(in.exit_code, 0) << in.err;
    EXPECT_THAT(in.out, HasSubstr("/scission-demo-device"));
    EXPECT_THAT(in.out, HasSubstr("169.254.77.1"));
    auto out = testbed.Run("device", {"-c", "cat /proc/self/cgroup"}, false);
    EXPECT_THAT(out.out, Not(HasSubstr("scission-demo")));
    // Another program than the test bed's binary: in the namespace, outside the cgroup.
    auto tool = testbed.RunTool("edge", {"sh", "-c", "cat /proc/self/cgroup; ip -o addr show"});
    EXPECT_EQ(tool.exit_code, 0) << tool.err;
    EXPECT_THAT(tool.out, HasSubstr("169.254.77.2"));
    EXPECT_THAT(tool.out, Not(HasSubstr("scission-demo")));
    int bg = testbed.Start("cloud", {"-c", "cat /proc/self/cgroup; exec sleep 30"});
    for (int i = 0; i < 200 && testbed.Output(bg).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_THAT(testbed.Output(bg), HasSubstr("/scission-demo-cloud"));
    // Left running: Cleanup (the destructor) must stop it and still remove its cgroup.
  }
  for (const char* host : {"device", "edge", "cloud"})
    EXPECT_FALSE(std::filesystem::exists(std::string("/sys/fs/cgroup/cpu/scission-demo-") + host))
        << host;
  EXPECT_THAT(Shell("ip netns list 2>/dev/null"), Not(HasSubstr("sc-")));
}

}  // namespace
}  // namespace scission::deploy
