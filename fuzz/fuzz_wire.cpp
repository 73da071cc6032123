// libFuzzer target: what a worker decodes from a caller. The input is a sequence of frames (a
// 2-byte little-endian length, then that many bytes), each parsed as an InferRequest as if it came
// off an Infer stream: the first one's tensor headers are checked, then every frame's data is
// assembled into tensors. Frames are also read as BenchmarkEvents, as a coordinator does. All of it
// must end in tensors, records or a scission::Error, never a crash or an unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "deploy/wire.h"

namespace {

std::vector<std::string> Frames(const uint8_t* data, size_t size) {
  std::vector<std::string> frames;
  size_t at = 0;
  while (at + 2 <= size && frames.size() < 64) {
    size_t length = data[at] | (static_cast<size_t>(data[at + 1]) << 8);
    at += 2;
    length = std::min(length, size - at);
    frames.emplace_back(reinterpret_cast<const char*>(data + at), length);
    at += length;
  }
  return frames;
}

// The stream a handler reads from, replaying frames.
struct FrameStream {
  std::vector<scission::v2::InferRequest> messages;
  size_t next = 1;
  bool Read(scission::v2::InferRequest* message) {
    if (next >= messages.size()) return false;
    *message = messages[next++];
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace scission;
  auto frames = Frames(data, size);
  FrameStream stream;
  for (const auto& f : frames) {
    v2::InferRequest message;
    if (message.ParseFromString(f)) stream.messages.push_back(std::move(message));
  }
  if (!stream.messages.empty()) {
    try {
      deploy::TensorLimits limits{1 << 20, 4 << 20};  // small, so the fuzzer stays fast
      auto specs = deploy::CheckHeaders(stream.messages[0].tensors(), "fuzz", limits);
      auto tensors = deploy::ReadTensorStream(&stream, stream.messages[0], specs, "fuzz");
      for (size_t i = 0; i < tensors.size(); ++i)
        if (static_cast<int64_t>(tensors[i].data.size()) != specs[i].bytes()) __builtin_trap();
    } catch (const Error&) {
    }
  }
  for (const auto& f : frames) {
    v2::BenchmarkEvent event;
    if (!event.ParseFromString(f)) continue;
    try {
      if (event.has_model()) deploy::FromWire(event.model(), "fuzz");
      if (event.has_block()) deploy::FromWire(event.block(), "fuzz");
      if (event.has_measurement()) deploy::FromWire(event.measurement(), "fuzz");
      if (event.has_run()) deploy::FromWire(event.run(), "fuzz");
    } catch (const Error&) {
    }
  }
  return 0;
}
