#include "store/validate.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "common/error.h"

namespace scission::store {

namespace {

// Length of the valid UTF-8 sequence at `pos` (shortest form, no surrogates, at most U+10FFFF)
// and its code point; 0 when the bytes there are not one.
size_t DecodeUtf8(std::string_view s, size_t pos, char32_t* code_point) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = byte(pos);
  size_t length = lead < 0x80           ? 1
                  : (lead >> 5) == 0x6  ? 2
                  : (lead >> 4) == 0xe  ? 3
                  : (lead >> 3) == 0x1e ? 4
                                        : 0;
  if (length == 0 || pos + length > s.size()) return 0;
  char32_t cp = length == 1 ? lead : lead & (0x7f >> length);
  for (size_t i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(pos + i) & 0x3f);
  }
  static constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kSmallest[length] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  *code_point = cp;
  return length;
}

bool IsControl(char32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

}  // namespace

std::string PrintableText(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size() && out.size() < 40) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(text, pos, &cp);
    if (length == 0 || IsControl(cp)) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[pos]));
      ++pos;
    } else {
      out.append(text.substr(pos, length));
      pos += length;
    }
  }
  return pos < text.size() ? out + "..." : out;
}

namespace {

void CheckBytes(int64_t bytes, const std::string& what, const char* field) {
  if (bytes < 0 || bytes > kMaxBytes)
    throw BadInput("{}: {} {} is not within 0..{} bytes", what, field, bytes, kMaxBytes);
}

void CheckMs(double ms, const std::string& what, const char* field) {
  if (!std::isfinite(ms) || ms < 0 || ms > kMaxMs)
    throw BadInput("{}: {} {} is not within 0..{:g} ms", what, field, ms, kMaxMs);
}

void ValidateMeasurement(const MeasurementRecord& m, const std::string& what) {
  CheckMs(m.setup_ms, what, "setup_ms");
  CheckMs(m.first_run_ms, what, "first_run_ms");
  for (const auto& [field, value] :
       {std::pair{"median_ms", m.median_ms}, std::pair{"mean_ms", m.mean_ms},
        std::pair{"p90_ms", m.p90_ms}, std::pair{"p95_ms", m.p95_ms},
        std::pair{"stddev_ms", m.stddev_ms}, std::pair{"min_ms", m.min_ms},
        std::pair{"max_ms", m.max_ms}})
    CheckMs(value, what, field);
  if (m.n < 0 || static_cast<uint64_t>(m.n) > kMaxSamples)
    throw BadInput("{}: n {} is not within 0..{}", what, m.n, kMaxSamples);
  if (m.samples_ms.size() > kMaxSamples)
    throw BadInput("{}: {} samples (at most {})", what, m.samples_ms.size(), kMaxSamples);
  for (double sample : m.samples_ms) CheckMs(sample, what, "sample");
  CheckBytes(m.output_bytes, what, "output_bytes");
}

}  // namespace

void ValidateName(std::string_view name, const std::string& what) {
  if (name.empty()) throw BadInput("{}: name is empty", what);
  if (name.size() > kMaxNameBytes)
    throw BadInput("{}: name '{}' is longer than {} bytes", what, PrintableText(name),
                   kMaxNameBytes);
  for (size_t pos = 0; pos < name.size();) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(name, pos, &cp);
    if (length == 0)
      throw BadInput("{}: name '{}' is not valid UTF-8 (byte {})", what, PrintableText(name), pos);
    if (IsControl(cp))
      throw BadInput("{}: name '{}' contains a control character (byte {})", what,
                     PrintableText(name), pos);
    pos += length;
  }
}

void ValidateModelKey(std::string_view key, const std::string& what) {
  constexpr std::string_view kImported = "scission:";
  if (key.starts_with(kImported)) return ValidateName(key.substr(kImported.size()), what);
  bool hex = key.size() == 64 && key.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!hex)
    throw BadInput("{}: model key '{}' is neither a SHA-256 (64 hex digits) nor scission:<name>",
                   what, PrintableText(key));
}

void ValidateRttMs(double rtt_ms, const std::string& what) {
  if (!std::isfinite(rtt_ms) || rtt_ms < 0 || rtt_ms > kMaxRttMs)
    throw BadInput("{}: RTT {} ms is not within 0..{:g} ms", what, rtt_ms, kMaxRttMs);
}

void ValidateMbps(double mbps, const std::string& what) {
  if (!std::isfinite(mbps) || mbps < kMinMbps || mbps > kMaxMbps)
    throw BadInput("{}: bandwidth {} Mbit/s is not within {:g}..{:g} Mbit/s", what, mbps, kMinMbps,
                   kMaxMbps);
}

void ValidateLink(const LinkRecord& link, const std::string& what) {
  ValidateName(link.source, what + ": source");
  ValidateName(link.destination, what + ": destination");
  if (link.source == link.destination)
    throw BadInput("{}: link from '{}' to itself (a link needs two different resources)", what,
                   PrintableText(link.source));
  ValidateRttMs(link.rtt_ms, what);
  ValidateMbps(link.mbps, what);
}

int64_t InputBytesFromMb(double mb, const std::string& what) {
  constexpr double kMaxMb = static_cast<double>(kMaxBytes) / 1e6;
  if (!std::isfinite(mb) || mb < 0 || mb > kMaxMb)
    throw BadInput("{}: {} MB is not within 0..{:g} MB", what, mb, kMaxMb);
  return static_cast<int64_t>(std::llround(mb * 1e6));
}

void ValidateMs(double ms, const std::string& what) { CheckMs(ms, what, "time"); }

void ValidateRun(const ResourceRecord& resource, const ModelRecord& model,
                 const std::vector<BlockRecord>& blocks, const RunRecord& run,
                 const std::string& what) {
  ValidateName(resource.name, what + ": resource");
  ValidateName(resource.tier, what + ": tier");
  ValidateRunRecords(model, blocks, run, what);
}

void ValidateRunRecords(const ModelRecord& model, const std::vector<BlockRecord>& blocks,
                        const RunRecord& run, const std::string& what) {
  ValidateName(model.name, what + ": model name");
  ValidateModelKey(model.key, what + ": model key");
  CheckBytes(model.file_bytes, what + ": model", "file_bytes");
  CheckBytes(model.input_bytes, what + ": model", "input_bytes");
  if (blocks.size() > kMaxBlocks)
    throw BadInput("{}: {} blocks (at most {})", what, blocks.size(), kMaxBlocks);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const BlockRecord& b = blocks[i];
    std::string where = fmt::format("{}: block {}", what, i);
    if (b.index != static_cast<int>(i))
      throw BadInput("{}: index {} (blocks must be numbered 0..n-1 in order)", where, b.index);
    if (b.nodes < 0) throw BadInput("{}: nodes {} is negative", where, b.nodes);
    CheckBytes(b.output_bytes, where, "output_bytes");
    if (b.first_layer < -1 || b.last_layer < b.first_layer)
      throw BadInput("{}: layer range {}..{} is invalid", where, b.first_layer, b.last_layer);
    // Positions are given together and follow on from the block before.
    if ((b.begin_pos < 0) != (b.end_pos < 0) || (b.begin_pos >= 0 && b.end_pos <= b.begin_pos) ||
        (i > 0 && b.begin_pos >= 0 && b.begin_pos != blocks[i - 1].end_pos))
      throw BadInput("{}: positions {}..{} do not continue the partition", where, b.begin_pos,
                     b.end_pos);
  }
  if (run.input_bytes < -1 || run.input_bytes > kMaxBytes)
    throw BadInput("{}: input_bytes {} is not within -1..{}", what, run.input_bytes, kMaxBytes);
  if (run.chain_check != "" && run.chain_check != "passed" && run.chain_check != "skipped")
    throw BadInput("{}: chain_check '{}' is not passed or skipped", what,
                   PrintableText(run.chain_check));
  if (run.input_shapes.size() > 4096 || run.partition.size() > 128 || run.inputs.size() > 65536)
    throw BadInput("{}: input shapes, partition or inputs text too long", what);
  if (run.threads < 0 || run.warmup < 0 || run.repeats < 0)
    throw BadInput("{}: threads, warmup and repeats must not be negative", what);
  CheckMs(run.wall_ms, what, "wall_ms");
  CheckMs(run.setup_ms, what, "setup_ms");
  std::set<int> seen;
  for (const auto& m : run.measurements) {
    std::string where = fmt::format("{}: measurement of block {}", what, m.block_index);
    if (m.block_index < -1 || m.block_index >= static_cast<int>(blocks.size()))
      throw BadInput("{}: block index is not within -1..{}", where,
                     static_cast<int>(blocks.size()) - 1);
    if (!seen.insert(m.block_index).second) throw BadInput("{}: measured twice", where);
    ValidateMeasurement(m, where);
  }
  std::set<std::pair<int, std::string>> codecs;
  for (const auto& c : run.codecs) {
    std::string where = fmt::format("{}: codec measurement at boundary {}", what, c.boundary);
    if (c.boundary < 0 || c.boundary > static_cast<int>(blocks.size()))
      throw BadInput("{}: boundary is not within 0..{}", where, blocks.size());
    if (c.codec.empty() || c.codec.size() > 64 ||
        !std::all_of(c.codec.begin(), c.codec.end(), [](char ch) {
          return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-';
        }))
      throw BadInput("{}: codec name '{}' is not one Scission writes", where,
                     PrintableText(c.codec));
    if (!codecs.insert({c.boundary, c.codec}).second)
      throw BadInput("{}: codec {} measured twice", where, c.codec);
    CheckBytes(c.raw_bytes, where, "raw_bytes");
    CheckBytes(c.bytes, where, "bytes");
    CheckMs(c.encode_ms, where, "encode_ms");
    CheckMs(c.decode_ms, where, "decode_ms");
    for (double e : {c.max_abs_error, c.rel_l2_error})
      if (!(e == -1 || e >= 0))  // also refuses NaN; a huge error is kept as DBL_MAX
        throw BadInput("{}: error {} is neither -1 (not measured) nor >= 0", where, e);
    if (!(c.top1_agreement == -1 || (c.top1_agreement >= 0 && c.top1_agreement <= 1)))
      throw BadInput("{}: top-1 agreement {} is not -1 or within 0..1", where, c.top1_agreement);
    if (c.fidelity_inputs < 0 || c.fidelity_inputs > 1'000'000)
      throw BadInput("{}: fidelity_inputs {} is out of range", where, c.fidelity_inputs);
  }
}

std::string NameFromFileStem(std::string_view stem) {
  std::string name;
  for (size_t pos = 0; pos < stem.size();) {
    char32_t cp = 0;
    size_t length = DecodeUtf8(stem, pos, &cp);
    if (length == 0 || IsControl(cp)) {
      length = length == 0 ? 1 : length;
      if (name.size() + 1 > kMaxNameBytes) break;
      name += '_';
    } else {
      if (name.size() + length > kMaxNameBytes) break;
      name.append(stem.substr(pos, length));
    }
    pos += length;
  }
  return name.empty() ? "model" : name;
}

}  // namespace scission::store
