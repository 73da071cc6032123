#include "serve/tensors.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "common/half.h"
#include "runtime/backend.h"

namespace scission::serve {

void Refuse(grpc::StatusCode code, int http_status, std::string message) {
  throw RequestError{code, http_status, std::move(message)};
}

namespace {

[[noreturn]] void Bad(std::string message) {
  Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400, std::move(message));
}

struct Name {
  DType dtype;
  const char* name;
};
constexpr Name kNames[] = {
    {DType::kBool, "BOOL"},     {DType::kUint8, "UINT8"},   {DType::kUint16, "UINT16"},
    {DType::kUint32, "UINT32"}, {DType::kUint64, "UINT64"}, {DType::kInt8, "INT8"},
    {DType::kInt16, "INT16"},   {DType::kInt32, "INT32"},   {DType::kInt64, "INT64"},
    {DType::kFloat16, "FP16"},  {DType::kFloat, "FP32"},    {DType::kDouble, "FP64"},
    {DType::kBfloat16, "BF16"},
};

// Elements of a shape a request declares: every dimension >= 0, the bytes within `max_bytes`.
int64_t CheckedCount(const std::string& name, const std::vector<int64_t>& shape, DType dtype,
                     int64_t max_bytes) {
  int64_t count = 1;
  const int64_t size = static_cast<int64_t>(DTypeSize(dtype));
  for (int64_t d : shape) {
    if (d < 0)
      Bad(fmt::format("input '{}': shape {} has a negative dimension", name, ShapeString(shape)));
    if (d > 0 && count > max_bytes / size / d)
      Refuse(grpc::StatusCode::RESOURCE_EXHAUSTED, 413,
             fmt::format("input '{}': shape {} is larger than the {} MiB a request may carry", name,
                         ShapeString(shape), max_bytes >> 20));
    count *= d;
  }
  return count;
}

template <typename T>
void Append(std::vector<uint8_t>& out, T value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

// Stores `value` (a double from JSON or a typed field) as `dtype`; false when it does not fit.
bool AppendAs(std::vector<uint8_t>& out, DType dtype, double value) {
  auto integral = [&](double lo, double hi) {
    return std::isfinite(value) && value == std::floor(value) && value >= lo && value <= hi;
  };
  // A value beyond the type's range would arrive as infinity (a double beyond float's is
  // undefined behaviour to convert); below it, rounding to the nearest value is the type's own.
  const bool float_range = std::isfinite(value) && std::fabs(value) < 0x1.ffffffp127;
  switch (dtype) {
    case DType::kFloat:
      if (!float_range) return false;
      Append(out, static_cast<float>(value));
      return true;
    case DType::kDouble:
      if (!std::isfinite(value)) return false;
      Append(out, value);
      return true;
    case DType::kFloat16: {
      if (!float_range) return false;
      const uint16_t half = FloatToHalf(static_cast<float>(value));
      if ((half & 0x7fff) == 0x7c00) return false;  // beyond 65504
      Append(out, half);
      return true;
    }
    case DType::kBfloat16: {
      if (!float_range) return false;
      const uint16_t bf16 = FloatToBfloat16(static_cast<float>(value));
      if ((bf16 & 0x7fff) == 0x7f80) return false;  // beyond about 3.39e38
      Append(out, bf16);
      return true;
    }
    case DType::kBool:
      if (value != 0 && value != 1) return false;
      Append(out, static_cast<uint8_t>(value));
      return true;
    case DType::kInt8:
      if (!integral(-128, 127)) return false;
      Append(out, static_cast<int8_t>(value));
      return true;
    case DType::kInt16:
      if (!integral(-32768, 32767)) return false;
      Append(out, static_cast<int16_t>(value));
      return true;
    case DType::kInt32:
      if (!integral(-2147483648.0, 2147483647.0)) return false;
      Append(out, static_cast<int32_t>(value));
      return true;
    case DType::kUint8:
      if (!integral(0, 255)) return false;
      Append(out, static_cast<uint8_t>(value));
      return true;
    case DType::kUint16:
      if (!integral(0, 65535)) return false;
      Append(out, static_cast<uint16_t>(value));
      return true;
    case DType::kUint32:
      if (!integral(0, 4294967295.0)) return false;
      Append(out, static_cast<uint32_t>(value));
      return true;
    default:
      return false;  // 64-bit integers are appended exactly by the callers
  }
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The typed field a datatype travels in, and how many values it holds.
std::vector<uint8_t> FromContents(const std::string& name, DType dtype, int64_t count,
                                  const inference::InferTensorContents& c) {
  std::vector<uint8_t> out;
  auto check = [&](int size, const char* field) {
    if (size != count)
      Bad(fmt::format("input '{}': {} holds {} values, the shape needs {}", name, field, size,
                      count));
    out.reserve(static_cast<size_t>(count) * DTypeSize(dtype));
  };
  auto each = [&](const auto& values, const char* field) {
    check(values.size(), field);
    for (auto v : values)
      if (!AppendAs(out, dtype, static_cast<double>(v)))
        Bad(fmt::format("input '{}': value {} in {} does not fit {}", name, v, field,
                        DatatypeName(dtype)));
  };
  switch (dtype) {
    case DType::kBool:
      each(c.bool_contents(), "bool_contents");
      break;
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
      each(c.int_contents(), "int_contents");
      break;
    case DType::kUint8:
    case DType::kUint16:
    case DType::kUint32:
      each(c.uint_contents(), "uint_contents");
      break;
    case DType::kInt64:
      check(c.int64_contents_size(), "int64_contents");
      for (int64_t v : c.int64_contents()) Append(out, v);
      break;
    case DType::kUint64:
      check(c.uint64_contents_size(), "uint64_contents");
      for (uint64_t v : c.uint64_contents()) Append(out, v);
      break;
    case DType::kFloat:
      check(c.fp32_contents_size(), "fp32_contents");
      for (float v : c.fp32_contents()) Append(out, v);
      break;
    case DType::kDouble:
      check(c.fp64_contents_size(), "fp64_contents");
      for (double v : c.fp64_contents()) Append(out, v);
      break;
    default:
      Bad(fmt::format("input '{}': {} travels only as raw_input_contents", name,
                      DatatypeName(dtype)));
  }
  return out;
}

void FlattenJson(const std::string& name, const nlohmann::json& data, DType dtype,
                 int64_t max_values, std::vector<uint8_t>& out, int64_t& values, int depth) {
  if (depth > 32) Bad(fmt::format("input '{}': data nested deeper than 32 levels", name));
  if (data.is_array()) {
    for (const auto& item : data)
      FlattenJson(name, item, dtype, max_values, out, values, depth + 1);
    return;
  }
  if (++values > max_values)
    Bad(fmt::format("input '{}': data holds more values than the shape needs ({})", name,
                    max_values));
  // nlohmann reads every non-negative integer as unsigned: one above INT64_MAX must not wrap.
  if (dtype == DType::kInt64 && data.is_number_integer() &&
      !(data.is_number_unsigned() && data.get<uint64_t>() > uint64_t{INT64_MAX})) {
    Append(out, data.get<int64_t>());
    return;
  }
  if (dtype == DType::kUint64 && data.is_number_unsigned()) {
    Append(out, data.get<uint64_t>());
    return;
  }
  double v;
  if (data.is_boolean())
    v = data.get<bool>() ? 1 : 0;
  else if (data.is_number())
    v = data.get<double>();
  else
    Bad(fmt::format("input '{}': data holds {}, not a number", name, data.type_name()));
  if ((dtype == DType::kBool) != data.is_boolean() || dtype == DType::kInt64 ||
      dtype == DType::kUint64 || !AppendAs(out, dtype, v))
    Bad(fmt::format("input '{}': value {} is not {}", name, data.dump(), DatatypeName(dtype)));
}

std::vector<int64_t> JsonShape(const std::string& name, const nlohmann::json& shape) {
  if (!shape.is_array()) Bad(fmt::format("input '{}': 'shape' must be an array", name));
  if (shape.size() > 64) Bad(fmt::format("input '{}': more than 64 dimensions", name));
  std::vector<int64_t> dims;
  for (const auto& d : shape) {
    if (!d.is_number_integer())
      Bad(fmt::format("input '{}': shape entry {} is not an integer", name, d.dump()));
    dims.push_back(d.get<int64_t>());
  }
  return dims;
}

}  // namespace

std::string DatatypeName(DType dtype) {
  for (const auto& n : kNames)
    if (n.dtype == dtype) return n.name;
  return "";
}

DType DatatypeFromName(const std::string& name) {
  for (const auto& n : kNames)
    if (name == n.name) return n.dtype;
  return DType::kUndefined;
}

InferRequest FromGrpc(const inference::ModelInferRequest& request, int64_t max_bytes) {
  InferRequest out;
  out.id = request.id();
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size())
    Bad(fmt::format("raw_input_contents has {} entries for {} inputs",
                    request.raw_input_contents_size(), request.inputs_size()));
  int64_t total = 0;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& in = request.inputs(i);
    RequestTensor t;
    t.name = in.name();
    t.datatype = in.datatype();
    t.shape.assign(in.shape().begin(), in.shape().end());
    DType dtype = DatatypeFromName(t.datatype);
    if (dtype == DType::kUndefined)
      Bad(fmt::format("input '{}': datatype '{}' is not supported", t.name, t.datatype));
    const int64_t count = CheckedCount(t.name, t.shape, dtype, max_bytes);
    const int64_t bytes = count * static_cast<int64_t>(DTypeSize(dtype));
    if (raw) {
      if (in.has_contents())
        Bad(fmt::format("input '{}': contents given together with raw_input_contents", t.name));
      const auto& data = request.raw_input_contents(i);
      if (static_cast<int64_t>(data.size()) != bytes)
        Bad(fmt::format("input '{}': raw_input_contents has {} bytes, {} {} needs {}", t.name,
                        data.size(), t.datatype, ShapeString(t.shape), bytes));
      t.data.assign(data.begin(), data.end());
    } else {
      t.data = FromContents(t.name, dtype, count, in.contents());
    }
    total += bytes;
    if (total > max_bytes)
      Refuse(grpc::StatusCode::RESOURCE_EXHAUSTED, 413,
             fmt::format("the inputs are larger than the {} MiB a request may carry",
                         max_bytes >> 20));
    out.inputs.push_back(std::move(t));
  }
  for (const auto& o : request.outputs()) out.outputs.push_back(o.name());
  return out;
}

InferRequest FromJson(const nlohmann::json& body, int64_t max_bytes) {
  if (!body.is_object()) Bad("the request body must be a JSON object");
  InferRequest out;
  if (body.contains("id")) {
    if (!body["id"].is_string()) Bad("'id' must be a string");
    out.id = body["id"].get<std::string>();
  }
  if (!body.contains("inputs") || !body["inputs"].is_array())
    Bad("the request needs an 'inputs' array");
  int64_t total = 0;
  for (const auto& in : body["inputs"]) {
    if (!in.is_object()) Bad("every entry of 'inputs' must be an object");
    for (const char* key : {"name", "datatype"})
      if (!in.contains(key) || !in[key].is_string())
        Bad(fmt::format("an input needs a string '{}'", key));
    RequestTensor t;
    t.name = in["name"].get<std::string>();
    t.datatype = in["datatype"].get<std::string>();
    if (!in.contains("shape")) Bad(fmt::format("input '{}': no 'shape'", t.name));
    t.shape = JsonShape(t.name, in["shape"]);
    DType dtype = DatatypeFromName(t.datatype);
    if (dtype == DType::kUndefined)
      Bad(fmt::format("input '{}': datatype '{}' is not supported", t.name, t.datatype));
    const int64_t count = CheckedCount(t.name, t.shape, dtype, max_bytes);
    total += count * static_cast<int64_t>(DTypeSize(dtype));
    if (total > max_bytes)
      Refuse(grpc::StatusCode::RESOURCE_EXHAUSTED, 413,
             fmt::format("the inputs are larger than the {} MiB a request may carry",
                         max_bytes >> 20));
    if (!in.contains("data")) Bad(fmt::format("input '{}': no 'data'", t.name));
    int64_t values = 0;
    t.data.reserve(static_cast<size_t>(count) * DTypeSize(dtype));
    FlattenJson(t.name, in["data"], dtype, count, t.data, values, 0);
    if (values != count)
      Bad(fmt::format("input '{}': data holds {} values, shape {} needs {}", t.name, values,
                      ShapeString(t.shape), count));
    out.inputs.push_back(std::move(t));
  }
  if (body.contains("outputs")) {
    if (!body["outputs"].is_array()) Bad("'outputs' must be an array");
    for (const auto& o : body["outputs"]) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
        Bad("every entry of 'outputs' needs a string 'name'");
      out.outputs.push_back(o["name"].get<std::string>());
    }
  }
  return out;
}

void ToGrpc(const std::vector<Tensor>& outputs, inference::ModelInferResponse& response) {
  for (const auto& t : outputs) {
    auto* o = response.add_outputs();
    o->set_name(t.spec.name);
    o->set_datatype(DatatypeName(t.spec.dtype));
    for (int64_t d : t.spec.shape) o->add_shape(d);
    response.add_raw_output_contents(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
}

nlohmann::json ToJson(const std::vector<Tensor>& outputs) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& t : outputs) {
    nlohmann::json data = nlohmann::json::array();
    const size_t size = DTypeSize(t.spec.dtype);
    const uint8_t* p = t.data.data();
    for (size_t at = 0; size > 0 && at + size <= t.data.size(); at += size, p += size) {
      switch (t.spec.dtype) {
        case DType::kFloat:
          data.push_back(Load<float>(p));
          break;
        case DType::kDouble:
          data.push_back(Load<double>(p));
          break;
        case DType::kFloat16:
          data.push_back(HalfToFloat(Load<uint16_t>(p)));
          break;
        case DType::kBfloat16: {
          uint32_t bits = static_cast<uint32_t>(Load<uint16_t>(p)) << 16;
          float f;
          std::memcpy(&f, &bits, sizeof f);
          data.push_back(f);
          break;
        }
        case DType::kBool:
          data.push_back(*p != 0);
          break;
        case DType::kInt8:
          data.push_back(Load<int8_t>(p));
          break;
        case DType::kInt16:
          data.push_back(Load<int16_t>(p));
          break;
        case DType::kInt32:
          data.push_back(Load<int32_t>(p));
          break;
        case DType::kInt64:
          data.push_back(Load<int64_t>(p));
          break;
        case DType::kUint8:
          data.push_back(*p);
          break;
        case DType::kUint16:
          data.push_back(Load<uint16_t>(p));
          break;
        case DType::kUint32:
          data.push_back(Load<uint32_t>(p));
          break;
        case DType::kUint64:
          data.push_back(Load<uint64_t>(p));
          break;
        default:
          break;
      }
    }
    list.push_back({{"name", t.spec.name},
                    {"datatype", DatatypeName(t.spec.dtype)},
                    {"shape", t.spec.shape},
                    {"data", std::move(data)}});
  }
  return list;
}

}  // namespace scission::serve
