#include "serve/estimate.h"

#include <gtest/gtest.h>

namespace scission::serve {
namespace {

Estimate Steady(double v, int n) {
  Estimate e;
  for (int i = 0; i < n; ++i) e.Add(v, "live");
  return e;
}

TEST(Estimate, ASingleOutlierAsksForConfirmationButLeavesTheMedian) {
  auto e = Steady(100, 5);
  EXPECT_EQ(e.Add(20, "live"), Moved::kOutlier);
  EXPECT_DOUBLE_EQ(e.Median(), 100);
  // The next sample is back at the old level: no shift, the outlier is forgotten.
  EXPECT_EQ(e.Add(101, "live"), Moved::kNo);
  EXPECT_DOUBLE_EQ(e.Median(), 100);
  EXPECT_EQ(e.outlier_side, 0);
}

TEST(Estimate, TwoOutliersOnTheSameSideAreALevelShift) {
  auto e = Steady(100, 5);
  EXPECT_EQ(e.Add(20, "live"), Moved::kOutlier);
  EXPECT_EQ(e.Add(30, "probe"), Moved::kShift);
  EXPECT_EQ(e.samples.size(), 2u);
  EXPECT_DOUBLE_EQ(e.Median(), 25);
  EXPECT_EQ(e.source, "probe");
  // Upwards too, measured against the level before the first outlier.
  EXPECT_EQ(e.Add(80, "probe"), Moved::kOutlier);
  EXPECT_EQ(e.Add(90, "live"), Moved::kShift);
  EXPECT_DOUBLE_EQ(e.Median(), 85);
}

TEST(Estimate, OneSampleIsNeverAShiftHoweverFarOff) {
  auto e = Steady(100, 5);
  EXPECT_EQ(e.Add(1, "live"), Moved::kOutlier);
  EXPECT_DOUBLE_EQ(e.Median(), 100);
  EXPECT_EQ(e.Add(100, "live"), Moved::kNo);
  EXPECT_EQ(e.Add(10000, "live"), Moved::kOutlier);
  EXPECT_DOUBLE_EQ(e.Median(), 100);
  // The second one confirms: the estimate is the mean of both.
  EXPECT_EQ(e.Add(20000, "probe"), Moved::kShift);
  EXPECT_DOUBLE_EQ(e.Median(), 15000);
}

TEST(Estimate, OutliersOnOppositeSidesAreNoShift) {
  auto e = Steady(100, 5);
  EXPECT_EQ(e.Add(20, "live"), Moved::kOutlier);
  EXPECT_EQ(e.Add(500, "live"), Moved::kOutlier);
  EXPECT_EQ(e.samples.size(), 5u);
  EXPECT_DOUBLE_EQ(e.Median(), 100);
}

TEST(Estimate, WithoutOutliersTheMedianFollowsAStepWithinThreeSamples) {
  auto e = Steady(100, 5);
  EXPECT_EQ(e.Add(160, "live"), Moved::kMedian);  // moves by more than a third
  EXPECT_DOUBLE_EQ(e.Median(), 100);
  e.Add(160, "live");
  e.Add(160, "live");
  EXPECT_DOUBLE_EQ(e.Median(), 160);
  EXPECT_EQ(e.Add(170, "live"), Moved::kNo);
  EXPECT_DOUBLE_EQ(e.Min(), 100);  // one of the old level is still among the last five
}

}  // namespace
}  // namespace scission::serve
