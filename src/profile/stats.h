// Summary statistics as small pure functions over raw samples (milliseconds in, same unit out).
// Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's
// default): for sorted x[0..n-1], rank h = (n-1)q, value x[floor h] + (h - floor h)(x[ceil h] -
// x[floor h]). The median is the 0.5 percentile (mean of the two middle values for even n).
#pragma once

#include <cstddef>
#include <vector>

namespace scission::profile {

double Mean(const std::vector<double>& samples);
// Sample standard deviation (divides by n-1); 0 for fewer than two samples.
double StdDev(const std::vector<double>& samples);
// q in [0, 1]; samples need not be sorted. NaN for an empty vector.
double Percentile(std::vector<double> samples, double q);
double Median(const std::vector<double>& samples);

struct SampleStats {
  size_t n = 0;
  double min = 0, max = 0, mean = 0, median = 0, stddev = 0, p90 = 0, p95 = 0;
};
SampleStats Summarize(const std::vector<double>& samples);

}  // namespace scission::profile
