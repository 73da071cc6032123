#include <cmath>

#include <gtest/gtest.h>

#include "profile/stats.h"

namespace scission::profile {
namespace {

TEST(Stats, PercentileIsLinearInterpolationType7) {
  std::vector<double> x = {4, 1, 3, 2};  // unsorted on purpose
  EXPECT_DOUBLE_EQ(Percentile(x, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(x, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(Percentile(x, 0.9), 3.7);  // h = 2.7 -> 3 + 0.7
  EXPECT_DOUBLE_EQ(Median(x), 2.5);
  EXPECT_DOUBLE_EQ(Median({5}), 5.0);
  EXPECT_TRUE(std::isnan(Percentile({}, 0.5)));
}

TEST(Stats, MeanAndSampleStdDev) {
  std::vector<double> x = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(Mean(x), 5.0);
  EXPECT_NEAR(StdDev(x), std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_DOUBLE_EQ(StdDev({3}), 0.0);
}

TEST(Stats, SummarizeFillsEveryField) {
  std::vector<double> x;
  for (int i = 1; i <= 100; ++i) x.push_back(i);
  auto s = Summarize(x);
  EXPECT_EQ(s.n, 100u);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.median, 50.5);
  EXPECT_DOUBLE_EQ(s.p90, 90.1);
  EXPECT_DOUBLE_EQ(s.p95, 95.05);
}

}  // namespace
}  // namespace scission::profile
