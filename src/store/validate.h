// The rules every value must pass before the store keeps it, in one place so that every path in
// (flags, network CSVs, the original tool's .dat files, run documents, probes) applies the same
// ones. Each function throws BadInput "<what>: <why>" naming the allowed range; `what` is the
// file:line, file, flag or record the caller read the value from.
// Units: milliseconds, bytes, Mbit/s.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace scission::store {

// Names of resources, tiers, models and link ends: 1..kMaxNameBytes bytes of valid UTF-8 without
// control characters (C0, DEL, C1), so that every table, CSV and JSON output can show them.
inline constexpr size_t kMaxNameBytes = 128;
// Largest byte count a record may carry (model input, block output, file size): 1 TB.
inline constexpr int64_t kMaxBytes = 1'000'000'000'000;
// Largest time a record may carry: 10^9 ms (about 11.6 days), far above any real benchmark.
inline constexpr double kMaxMs = 1e9;
// Links: RTT 0..kMaxRttMs; bandwidth kMinMbps..kMaxMbps (1 kbit/s .. 10 Tbit/s).
inline constexpr double kMaxRttMs = 60'000;
inline constexpr double kMinMbps = 1e-3;
inline constexpr double kMaxMbps = 1e7;
// A run document's sizes: blocks per model and samples per measurement.
inline constexpr size_t kMaxBlocks = 100'000;
// Codec measurements in one run (boundaries x codecs).
inline constexpr size_t kMaxCodecRecords = 4'000'000;
inline constexpr size_t kMaxSamples = 10'000'000;

void ValidateName(std::string_view name, const std::string& what);
// A model key is the 64 hex digits of a SHA-256, or "scission:<name>" for imported data.
void ValidateModelKey(std::string_view key, const std::string& what);
void ValidateRttMs(double rtt_ms, const std::string& what);
void ValidateMbps(double mbps, const std::string& what);
// Names valid and different, RTT and bandwidth in range.
void ValidateLink(const LinkRecord& link, const std::string& what);
// A model input size given in MB (--input-mb, -i): finite, 0..kMaxBytes/1e6. Returns bytes.
int64_t InputBytesFromMb(double mb, const std::string& what);
// A time in ms: finite, 0..kMaxMs.
void ValidateMs(double ms, const std::string& what);
// Everything SaveRun stores: names, key, sizes, block indices 0..n-1 in order, one measurement per
// block index (-1 = whole model) at most, every time finite and in range.
void ValidateRun(const ResourceRecord& resource, const ModelRecord& model,
                 const std::vector<BlockRecord>& blocks, const RunRecord& run,
                 const std::string& what);
// The same without the resource (a worker's results carry none).
void ValidateRunRecords(const ModelRecord& model, const std::vector<BlockRecord>& blocks,
                        const RunRecord& run, const std::string& what);

// `text` as it may appear in a one-line message: invalid UTF-8 and control characters as \xNN,
// cut after about 40 bytes.
std::string PrintableText(std::string_view text);

// A usable model name made from a file stem: invalid UTF-8 and control characters become '_',
// and it is cut to kMaxNameBytes on a character boundary ("model" when nothing is left).
std::string NameFromFileStem(std::string_view stem);

}  // namespace scission::store
