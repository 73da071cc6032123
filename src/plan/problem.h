// The native planner's plain data: profiles per resource, links, constraints, objectives.
// Units: milliseconds, bytes, Mbit/s. Pure data; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace scission::plan {

// What one codec costs on one resource at one boundary (ms); negative = not measured there.
struct CodecCost {
  double encode_ms = -1;
  double decode_ms = -1;
  bool measured() const { return encode_ms >= 0 && decode_ms >= 0; }
};

struct ResourceProfile {
  std::string name;
  int tier = 0;                  // index into PlanProblem::tiers
  std::vector<double> block_ms;  // compute time of each block (median)
  // codec_cost[b][i]: PlanProblem::codecs[b][i] on this resource. Entries missing (either vector
  // too short) or not measured: a hop from or to this resource cannot use that codec.
  std::vector<std::vector<CodecCost>> codec_cost;
};

// A codec a hop may use at one boundary (DESIGN.md "Codecs"), with what was measured of it.
struct CodecChoice {
  std::string name;         // registry name, e.g. "lz4", "fp16+zstd"
  int64_t bytes = 0;        // bytes that cross the link with it
  double output_error = 0;  // relative L2 error of the outputs with it at this cut (0: exact)
};

struct Link {
  double rtt_ms = 0;
  double mbps = 0;
  // Milliseconds to move `bytes` over this link: RTT + bytes / bandwidth (Scission's model).
  double TransferMs(int64_t bytes) const {
    return rtt_ms + static_cast<double>(bytes) * 8.0 / (mbps * 1000.0);
  }
};

// Per-tier criteria in Scission's language, applied to block indices and resource names.
struct TierCriteria {
  std::vector<int> blocks_in;                   // N: block N runs on this tier
  std::vector<int> blocks_not_in;               // !N
  bool must_be_unused = false;                  // -1
  bool must_be_used = false;                    // !-1 (also implied by a name criterion)
  std::vector<std::string> only_resources;      // name
  std::vector<std::string> excluded_resources;  // !name
};

struct TimeLimit {
  double value = 0;
  bool percent = false;  // value is a percentage of the plan's total compute
};

enum class Objective { kLatency, kThroughput, kUplink };

constexpr int kMaxTopK = 1000;  // largest PlanProblem::top_k (--top)

struct PlanProblem {
  std::vector<std::string> tiers;  // ordered; the input starts on tiers[0]
  std::vector<ResourceProfile> resources;
  int blocks = 0;
  std::vector<int64_t> output_bytes;  // bytes leaving block b (size `blocks`)
  int64_t input_bytes = 0;            // bytes of the model input
  std::map<std::pair<std::string, std::string>, Link> links;  // (from, to)
  // codecs[b]: what a hop at boundary b (0..blocks; 0 = the model input, b = the output of block
  // b - 1, `blocks` = the final output for the return hop) may use besides raw bytes ("none",
  // BytesAtBoundary, free on every resource, always allowed). Empty or shorter: raw only.
  std::vector<std::vector<CodecChoice>> codecs;

  std::vector<TierCriteria> criteria;               // per tier (may be empty = none)
  int privacy_blocks = 0;                           // blocks 0..K-1 must run on tiers[0]
  std::map<int, int64_t> max_upload_bytes;          // tier -> bytes that may leave it
  std::map<int, TimeLimit> max_time;                // tier -> compute limit
  std::map<std::string, int64_t> max_memory_bytes;  // resource -> limit
  std::vector<int64_t> block_weight_bytes;          // for memory limits (size `blocks`, or empty)
  bool return_result = false;  // add the transfer of the final output back to the source

  Objective objective = Objective::kLatency;
  int top_k = 5;  // 1..kMaxTopK

  // BadInput describing the first inconsistency: sizes, tiers, criteria and cap keys; --top in
  // 1..kMaxTopK; block times in 0..1e12 ms; byte counts in 0..2^42; links with a finite bandwidth
  // of at least 1e-6 Mbit/s (1 bit/s) and an RTT in 0..1e12 ms; caps >= 0; at most 2^20 blocks;
  // codec lists for at most blocks + 1 boundaries, names non-empty, not "none" and distinct per
  // boundary, codec bytes in 0..2^42, output errors finite >= 0, codec costs finite <= 1e12 ms
  // (negative: not measured), no more costs than codecs listed.
  void Validate() const;
  int64_t BytesAtBoundary(int b) const { return b == 0 ? input_bytes : output_bytes[b - 1]; }
};

struct Stage {
  int resource = 0;  // index into PlanProblem::resources
  int first_block = 0;
  int last_block = -1;  // first..last inclusive; last < first means the stage runs nothing
  double compute_ms = 0;
};

struct Hop {
  int from = 0, to = 0;  // resource indices
  int64_t bytes = 0;     // on the link (after the codec)
  double ms = 0;         // encode + RTT + bytes / bandwidth + decode
  std::string codec = "none";
  int64_t raw_bytes = 0;  // the boundary's tensors before the codec
  double encode_ms = 0, decode_ms = 0;
  double output_error = 0;  // the codec's CodecChoice::output_error
};

struct PlanCandidate {
  std::vector<Stage> stages;  // in tier order; stages[0] is the source on tiers[0]
  std::vector<Hop> hops;      // between consecutive stages (+ the return hop if asked for)
  double compute_ms = 0;
  double transfer_ms = 0;
  double latency_ms = 0;
  double bottleneck_ms = 0;  // max over stage compute and hop times (throughput = 1000 / it)
  int64_t uplink_bytes = 0;  // bytes leaving the first tier
  double output_error = 0;   // sum of the hops' output_error (an estimate when several are lossy)
};

}  // namespace scission::plan
