// Open Inference Protocol tensors <-> Scission tensors, per datatype: gRPC raw and typed contents
// in, raw contents out, JSON data flat or nested in, JSON numbers out; and every refusal a
// RequestError whose message names the input and what is wrong.
#include "serve/tensors.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace scission::serve {
namespace {

using ::testing::HasSubstr;
using Contents = inference::InferTensorContents;

static_assert(std::endian::native == std::endian::little,
              "the expected bytes below are little-endian, as the protocol's");

template <typename T>
std::vector<uint8_t> Bytes(std::initializer_list<T> values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  std::memcpy(out.data(), std::data(values), out.size());
  return out;
}

// One datatype: four values as the protocol carries them (shape [2,2]).
struct Case {
  const char* datatype;
  DType dtype;
  std::vector<uint8_t> bytes;            // the tensor's little-endian bytes
  std::function<void(Contents*)> typed;  // fills the typed field; empty: raw only
  nlohmann::json values;                 // the same four values as JSON numbers
  std::string Name() const { return datatype; }
};

std::vector<Case> Cases() {
  constexpr int64_t i64min = std::numeric_limits<int64_t>::min();
  constexpr int64_t i64max = std::numeric_limits<int64_t>::max();
  constexpr uint64_t u64max = std::numeric_limits<uint64_t>::max();
  constexpr int32_t i32min = std::numeric_limits<int32_t>::min();
  constexpr int32_t i32max = std::numeric_limits<int32_t>::max();
  const int64_t beyond_double = (int64_t{1} << 53) + 1;  // not exact as a double
  return {
      {"FP32",
       DType::kFloat,
       Bytes<float>({1.5f, -0.0f, -2.25f, 0.125f}),
       [](Contents* c) {
         for (float v : {1.5f, -0.0f, -2.25f, 0.125f}) c->add_fp32_contents(v);
       },
       {1.5, -0.0, -2.25, 0.125}},
      {"FP64",
       DType::kDouble,
       Bytes<double>({1e300, -0.5, 0.1, -0.0}),
       [](Contents* c) {
         for (double v : {1e300, -0.5, 0.1, -0.0}) c->add_fp64_contents(v);
       },
       {1e300, -0.5, 0.1, -0.0}},
      // 1, -2, 65504 (the largest half), 0.333251953125 (exact in half).
      {"FP16",
       DType::kFloat16,
       Bytes<uint16_t>({0x3c00, 0xc000, 0x7bff, 0x3555}),
       {},
       {1.0, -2.0, 65504.0, 0.333251953125}},
      {"BF16",
       DType::kBfloat16,
       Bytes<uint16_t>({0x3f80, 0xc000, 0x4049, 0x0000}),
       {},
       {1.0, -2.0, 3.140625, 0.0}},
      {"INT8",
       DType::kInt8,
       Bytes<int8_t>({-128, -1, 0, 127}),
       [](Contents* c) {
         for (int v : {-128, -1, 0, 127}) c->add_int_contents(v);
       },
       {-128, -1, 0, 127}},
      {"INT16",
       DType::kInt16,
       Bytes<int16_t>({-32768, -2, 300, 32767}),
       [](Contents* c) {
         for (int v : {-32768, -2, 300, 32767}) c->add_int_contents(v);
       },
       {-32768, -2, 300, 32767}},
      {"INT32",
       DType::kInt32,
       Bytes<int32_t>({i32min, -5, 0, i32max}),
       [=](Contents* c) {
         for (int32_t v : {i32min, -5, 0, i32max}) c->add_int_contents(v);
       },
       {i32min, -5, 0, i32max}},
      {"INT64",
       DType::kInt64,
       Bytes<int64_t>({i64min, -1, beyond_double, i64max}),
       [=](Contents* c) {
         for (int64_t v : {i64min, int64_t{-1}, beyond_double, i64max}) c->add_int64_contents(v);
       },
       {i64min, -1, beyond_double, i64max}},
      {"UINT8",
       DType::kUint8,
       Bytes<uint8_t>({0, 1, 200, 255}),
       [](Contents* c) {
         for (unsigned v : {0u, 1u, 200u, 255u}) c->add_uint_contents(v);
       },
       {0, 1, 200, 255}},
      {"UINT16",
       DType::kUint16,
       Bytes<uint16_t>({0, 1, 40000, 65535}),
       [](Contents* c) {
         for (unsigned v : {0u, 1u, 40000u, 65535u}) c->add_uint_contents(v);
       },
       {0, 1, 40000, 65535}},
      {"UINT32",
       DType::kUint32,
       Bytes<uint32_t>({0, 1, 3000000000u, 4294967295u}),
       [](Contents* c) {
         for (unsigned v : {0u, 1u, 3000000000u, 4294967295u}) c->add_uint_contents(v);
       },
       {0u, 1u, 3000000000u, 4294967295u}},
      {"UINT64",
       DType::kUint64,
       Bytes<uint64_t>({0, 1, static_cast<uint64_t>(beyond_double), u64max}),
       [=](Contents* c) {
         for (uint64_t v : {uint64_t{0}, uint64_t{1}, static_cast<uint64_t>(beyond_double), u64max})
           c->add_uint64_contents(v);
       },
       {0u, 1u, static_cast<uint64_t>(beyond_double), u64max}},
      {"BOOL",
       DType::kBool,
       Bytes<uint8_t>({1, 0, 0, 1}),
       [](Contents* c) {
         for (bool v : {true, false, false, true}) c->add_bool_contents(v);
       },
       {true, false, false, true}},
  };
}

constexpr int64_t kMaxBytes = 1 << 20;

inference::ModelInferRequest::InferInputTensor* AddInput(inference::ModelInferRequest& request,
                                                         const std::string& datatype,
                                                         std::vector<int64_t> shape,
                                                         const std::string& name = "x") {
  auto* in = request.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

nlohmann::json JsonBody(const std::string& datatype, nlohmann::json shape, nlohmann::json data) {
  return {{"inputs",
           {{{"name", "x"}, {"datatype", datatype}, {"shape", shape}, {"data", std::move(data)}}}}};
}

// The refusal `call` throws; a failure (and an empty error) when it accepts.
template <typename Call>
RequestError Refusal(Call&& call) {
  try {
    call();
  } catch (const RequestError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted";
  return {grpc::StatusCode::OK, 0, ""};
}

void ExpectInvalid(const RequestError& e, const std::string& message) {
  EXPECT_EQ(e.code, grpc::StatusCode::INVALID_ARGUMENT) << e.message;
  EXPECT_EQ(e.http_status, 400) << e.message;
  EXPECT_THAT(e.message, HasSubstr(message));
}

void ExpectTooLarge(const RequestError& e, const std::string& message) {
  EXPECT_EQ(e.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << e.message;
  EXPECT_EQ(e.http_status, 413) << e.message;
  EXPECT_THAT(e.message, HasSubstr(message));
}

Tensor MakeTensor(const Case& c) { return {{"y", c.dtype, {2, 2}}, c.bytes}; }

TEST(ServeTensors, DatatypeNamesAreTheProtocolsAndRoundTrip) {
  for (const auto& c : Cases()) {
    EXPECT_EQ(DatatypeFromName(c.datatype), c.dtype) << c.datatype;
    EXPECT_EQ(DatatypeName(c.dtype), c.datatype);
  }
  EXPECT_EQ(DatatypeFromName("BYTES"), DType::kUndefined);  // Scission carries no strings
  EXPECT_EQ(DatatypeFromName("fp32"), DType::kUndefined);   // names are case-sensitive
  EXPECT_EQ(DatatypeFromName(""), DType::kUndefined);
  EXPECT_EQ(DatatypeName(DType::kString), "");
}

TEST(ServeTensors, GrpcRawContentsArePassedThroughByteForByte) {
  for (const auto& c : Cases()) {
    inference::ModelInferRequest request;
    request.set_id("r1");
    AddInput(request, c.datatype, {2, 2});
    request.add_raw_input_contents(std::string(c.bytes.begin(), c.bytes.end()));
    request.add_outputs()->set_name("y");
    auto got = FromGrpc(request, kMaxBytes);
    EXPECT_EQ(got.id, "r1");
    EXPECT_EQ(got.outputs, std::vector<std::string>{"y"});
    ASSERT_EQ(got.inputs.size(), 1u);
    EXPECT_EQ(got.inputs[0].name, "x");
    EXPECT_EQ(got.inputs[0].datatype, c.datatype);
    EXPECT_EQ(got.inputs[0].shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(got.inputs[0].data, c.bytes) << c.datatype;
  }
  // Half and bfloat16 bits are not looked at: NaN, infinity and subnormals arrive as sent.
  for (const char* datatype : {"FP16", "BF16"}) {
    const auto bits = Bytes<uint16_t>({0x7e00, 0x7c00, 0x0001, 0x8000});
    inference::ModelInferRequest request;
    AddInput(request, datatype, {4});
    request.add_raw_input_contents(std::string(bits.begin(), bits.end()));
    EXPECT_EQ(FromGrpc(request, kMaxBytes).inputs[0].data, bits) << datatype;
  }
  // Inputs without elements take no bytes.
  inference::ModelInferRequest empty;
  AddInput(empty, "FP32", {0, std::numeric_limits<int64_t>::max()});
  empty.add_raw_input_contents("");
  EXPECT_TRUE(FromGrpc(empty, kMaxBytes).inputs[0].data.empty());
}

TEST(ServeTensors, GrpcTypedContentsBecomeLittleEndianBytes) {
  int typed = 0;
  for (const auto& c : Cases()) {
    if (!c.typed) continue;
    ++typed;
    inference::ModelInferRequest request;
    c.typed(AddInput(request, c.datatype, {2, 2})->mutable_contents());
    auto got = FromGrpc(request, kMaxBytes);
    ASSERT_EQ(got.inputs.size(), 1u);
    EXPECT_EQ(got.inputs[0].data, c.bytes) << c.datatype;
  }
  EXPECT_EQ(typed, 11);  // all but FP16 and BF16
  // Two inputs in two typed fields.
  inference::ModelInferRequest two;
  AddInput(two, "INT64", {1}, "a")->mutable_contents()->add_int64_contents(-7);
  AddInput(two, "BOOL", {2}, "b")->mutable_contents()->add_bool_contents(true);
  two.mutable_inputs(1)->mutable_contents()->add_bool_contents(false);
  auto got = FromGrpc(two, kMaxBytes);
  ASSERT_EQ(got.inputs.size(), 2u);
  EXPECT_EQ(got.inputs[0].data, Bytes<int64_t>({-7}));
  EXPECT_EQ(got.inputs[1].name, "b");
  EXPECT_EQ(got.inputs[1].data, Bytes<uint8_t>({1, 0}));
}

TEST(ServeTensors, GrpcRequestsThatCannotBeReadAreRefusedByName) {
  auto raw = [](const std::string& datatype, std::vector<int64_t> shape, size_t bytes) {
    inference::ModelInferRequest r;
    AddInput(r, datatype, std::move(shape));
    r.add_raw_input_contents(std::string(bytes, '\0'));
    return r;
  };
  auto typed = [](const std::string& datatype, std::vector<int64_t> shape,
                  const std::function<void(Contents*)>& fill) {
    inference::ModelInferRequest r;
    fill(AddInput(r, datatype, std::move(shape))->mutable_contents());
    return r;
  };
  auto refused = [](const inference::ModelInferRequest& r) {
    return Refusal([&] { FromGrpc(r, kMaxBytes); });
  };

  // Half and bfloat16 have no typed field.
  for (const char* datatype : {"FP16", "BF16"})
    ExpectInvalid(refused(typed(datatype, {1}, [](Contents* c) { c->add_fp32_contents(1); })),
                  fmt::format("input 'x': {} travels only as raw_input_contents", datatype));
  ExpectInvalid(refused(raw("FP32", {2, 2}, 15)),
                "input 'x': raw_input_contents has 15 bytes, FP32 [2,2] needs 16");
  ExpectInvalid(refused(raw("INT64", {3}, 25)),
                "input 'x': raw_input_contents has 25 bytes, INT64 [3] needs 24");
  auto both = raw("FP32", {1}, 4);
  both.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  ExpectInvalid(refused(both), "input 'x': contents given together with raw_input_contents");
  auto short_raw = raw("FP32", {1}, 4);
  AddInput(short_raw, "FP32", {1}, "second");
  ExpectInvalid(refused(short_raw), "raw_input_contents has 1 entries for 2 inputs");
  ExpectInvalid(refused(typed("FP32", {2, 2},
                              [](Contents* c) {
                                for (int i = 0; i < 3; ++i) c->add_fp32_contents(1);
                              })),
                "input 'x': fp32_contents holds 3 values, the shape needs 4");
  // Values in another type's field are not looked for there.
  ExpectInvalid(refused(typed("INT32", {1}, [](Contents* c) { c->add_int64_contents(1); })),
                "input 'x': int_contents holds 0 values, the shape needs 1");
  ExpectInvalid(refused(typed("UINT64", {1}, [](Contents* c) { c->add_uint_contents(1); })),
                "input 'x': uint64_contents holds 0 values, the shape needs 1");
  // 32-bit fields carry narrower types: values beyond the datatype are refused, not cut.
  ExpectInvalid(refused(typed("INT8", {1}, [](Contents* c) { c->add_int_contents(128); })),
                "input 'x': value 128 in int_contents does not fit INT8");
  ExpectInvalid(refused(typed("INT8", {1}, [](Contents* c) { c->add_int_contents(-129); })),
                "value -129 in int_contents does not fit INT8");
  ExpectInvalid(refused(typed("INT16", {1}, [](Contents* c) { c->add_int_contents(-32769); })),
                "value -32769 in int_contents does not fit INT16");
  ExpectInvalid(refused(typed("UINT8", {1}, [](Contents* c) { c->add_uint_contents(256); })),
                "value 256 in uint_contents does not fit UINT8");
  ExpectInvalid(refused(typed("UINT16", {1}, [](Contents* c) { c->add_uint_contents(65536); })),
                "value 65536 in uint_contents does not fit UINT16");
  ExpectInvalid(refused(raw("FP32", {2, -3}, 0)),
                "input 'x': shape [2,?] has a negative dimension");
  ExpectInvalid(refused(raw("BYTES", {1}, 1)), "input 'x': datatype 'BYTES' is not supported");
  ExpectInvalid(refused(raw("float32", {1}, 4)), "input 'x': datatype 'float32' is not supported");
  // Element counts that overflow, or bytes beyond the request limit, before any allocation.
  constexpr int64_t huge = int64_t{1} << 40, max = std::numeric_limits<int64_t>::max();
  ExpectTooLarge(refused(raw("FP32", {huge, huge}, 0)),
                 "input 'x': shape [1099511627776,1099511627776] is larger than the 1 MiB a "
                 "request may carry");
  ExpectTooLarge(refused(raw("UINT8", {max, 2}, 0)),
                 "is larger than the 1 MiB a request may carry");
  ExpectTooLarge(refused(typed("FP64", {huge}, [](Contents*) {})), "is larger than the 1 MiB");
  auto two = raw("UINT8", {600 << 10}, 600 << 10);
  AddInput(two, "UINT8", {600 << 10}, "second");
  two.add_raw_input_contents(std::string(600 << 10, '\0'));
  ExpectTooLarge(refused(two), "the inputs are larger than the 1 MiB a request may carry");
}

TEST(ServeTensors, JsonDataFlatOrNestedBecomesTheSameBytes) {
  using nlohmann::json;
  for (const auto& c : Cases()) {
    const auto& v = c.values;
    const std::vector<std::pair<std::vector<int64_t>, json>> forms = {
        {{4}, v},
        {{2, 2}, json::array({json::array({v[0], v[1]}), json::array({v[2], v[3]})})},
        {{2, 2, 1},
         json::array({json::array({json::array({v[0]}), json::array({v[1]})}),
                      json::array({json::array({v[2]}), json::array({v[3]})})})},
    };
    for (const auto& [shape, data] : forms) {
      auto body = JsonBody(c.datatype, shape, data);
      body["id"] = "j1";
      body["outputs"] = json::array({{{"name", "y"}}});
      auto got = FromJson(body, kMaxBytes);
      EXPECT_EQ(got.id, "j1");
      EXPECT_EQ(got.outputs, std::vector<std::string>{"y"});
      ASSERT_EQ(got.inputs.size(), 1u);
      EXPECT_EQ(got.inputs[0].name, "x");
      EXPECT_EQ(got.inputs[0].datatype, c.datatype);
      EXPECT_EQ(got.inputs[0].shape, shape);
      EXPECT_EQ(got.inputs[0].data, c.bytes) << c.datatype << " " << data.dump();
    }
  }
  // As an HTTP body arrives (non-negative integers read as unsigned): the 64-bit extremes.
  auto parsed = FromJson(json::parse(R"({"inputs": [{"name": "x", "datatype": "INT64",
      "shape": [2], "data": [9223372036854775807, -9223372036854775808]}]})"),
                         kMaxBytes);
  EXPECT_EQ(parsed.inputs[0].data, Bytes<int64_t>({std::numeric_limits<int64_t>::max(),
                                                   std::numeric_limits<int64_t>::min()}));
  // Floats in JSON round to the nearest value of the type, as a client's own cast would.
  auto got = FromJson(JsonBody("FP32", {2}, {0.1, 3.4028235e38}), kMaxBytes);
  EXPECT_EQ(got.inputs[0].data, Bytes<float>({0.1f, std::numeric_limits<float>::max()}));
  got = FromJson(JsonBody("FP16", {1}, {65519.0}), kMaxBytes);  // below 65520: 65504
  EXPECT_EQ(got.inputs[0].data, Bytes<uint16_t>({0x7bff}));
  // Integral floats are integers.
  got = FromJson(JsonBody("INT32", {2}, {3.0, -0.0}), kMaxBytes);
  EXPECT_EQ(got.inputs[0].data, Bytes<int32_t>({3, 0}));
}

TEST(ServeTensors, JsonValuesTheDatatypeCannotHoldAreRefused) {
  auto refused = [](const std::string& datatype, nlohmann::json value) {
    return Refusal(
        [&] { FromJson(JsonBody(datatype, {1}, nlohmann::json::array({value})), kMaxBytes); });
  };
  ExpectInvalid(refused("UINT8", 300), "input 'x': value 300 is not UINT8");
  ExpectInvalid(refused("UINT8", -1), "value -1 is not UINT8");
  ExpectInvalid(refused("INT8", 128), "value 128 is not INT8");
  ExpectInvalid(refused("INT16", 40000), "value 40000 is not INT16");
  ExpectInvalid(refused("UINT32", 4294967296), "value 4294967296 is not UINT32");
  ExpectInvalid(refused("INT32", 1.5), "value 1.5 is not INT32");
  ExpectInvalid(refused("INT32", 2147483648), "value 2147483648 is not INT32");
  ExpectInvalid(refused("INT64", 1.5), "value 1.5 is not INT64");
  ExpectInvalid(refused("UINT64", -1), "value -1 is not UINT64");
  ExpectInvalid(refused("UINT64", 2.0), "value 2.0 is not UINT64");
  // One above INT64_MAX used to wrap to INT64_MIN (nlohmann reads it as unsigned).
  ExpectInvalid(refused("INT64", uint64_t{1} << 63), "value 9223372036854775808 is not INT64");
  ExpectInvalid(refused("INT64", std::numeric_limits<uint64_t>::max()),
                "value 18446744073709551615 is not INT64");
  // Booleans are BOOL's alone, and BOOL takes nothing else (true used to arrive as 1.0).
  ExpectInvalid(refused("FP32", true), "value true is not FP32");
  ExpectInvalid(refused("INT32", false), "value false is not INT32");
  ExpectInvalid(refused("UINT8", true), "value true is not UINT8");
  ExpectInvalid(refused("BOOL", 1), "value 1 is not BOOL");
  ExpectInvalid(refused("BOOL", 0.0), "value 0.0 is not BOOL");
  // Beyond a float type's range (these used to arrive as infinity).
  ExpectInvalid(refused("FP32", 1e39), "value 1e+39 is not FP32");
  ExpectInvalid(refused("FP32", -3.5e38), "value -3.5e+38 is not FP32");
  ExpectInvalid(refused("FP16", 70000), "value 70000 is not FP16");
  ExpectInvalid(refused("FP16", -65520.0), "value -65520.0 is not FP16");
  ExpectInvalid(refused("BF16", 3.4e38), "value 3.4e+38 is not BF16");
  ExpectInvalid(refused("BF16", 1e300), "value 1e+300 is not BF16");
  ExpectInvalid(refused("FP32", "1"), "input 'x': data holds string, not a number");
  ExpectInvalid(refused("FP32", nullptr), "data holds null, not a number");
  ExpectInvalid(refused("FP32", nlohmann::json::object()), "data holds object, not a number");
}

TEST(ServeTensors, JsonRequestsThatCannotBeReadAreRefusedByName) {
  auto refused = [](const nlohmann::json& body) {
    return Refusal([&] { FromJson(body, kMaxBytes); });
  };
  ExpectInvalid(refused(JsonBody("FP32", {2, 2}, {1, 2, 3, 4, 5})),
                "input 'x': data holds more values than the shape needs (4)");
  ExpectInvalid(refused(JsonBody("FP32", {2, 2}, {{1, 2}, {3}})),
                "input 'x': data holds 3 values, shape [2,2] needs 4");
  ExpectInvalid(refused(JsonBody("FP32", nlohmann::json::array({0}), nlohmann::json::array({1}))),
                "more values than the shape needs (0)");
  nlohmann::json deep = 1;
  for (int i = 0; i < 40; ++i) deep = nlohmann::json::array({deep});
  ExpectInvalid(refused(JsonBody("FP32", {1}, deep)), "input 'x': data nested deeper than 32");
  ExpectInvalid(refused(JsonBody("FP32", {2, -1}, {1, 2})),
                "input 'x': shape [2,?] has a negative dimension");
  ExpectInvalid(refused(JsonBody("FP32", {2, 1.5}, {1, 2})),
                "input 'x': shape entry 1.5 is not an integer");
  ExpectInvalid(refused(JsonBody("FP32", nlohmann::json::array({"2"}), {1, 2})),
                "shape entry \"2\" is not an integer");
  ExpectInvalid(refused(JsonBody("FP32", 2, {1, 2})), "input 'x': 'shape' must be an array");
  ExpectInvalid(refused(JsonBody("FP32", std::vector<int>(65, 1), {1})),
                "input 'x': more than 64 dimensions");
  ExpectInvalid(refused(JsonBody("BYTES", {1}, {"a"})),
                "input 'x': datatype 'BYTES' is not supported");
  ExpectTooLarge(refused(JsonBody("FP32", {int64_t{1} << 40, int64_t{1} << 40}, {1})),
                 "input 'x': shape [1099511627776,1099511627776] is larger than the 1 MiB");
  ExpectTooLarge(refused(JsonBody("INT64", {std::numeric_limits<int64_t>::max(), 3}, {1})),
                 "is larger than the 1 MiB a request may carry");

  nlohmann::json no_data = JsonBody("FP32", {1}, {1});
  no_data["inputs"][0].erase("data");
  ExpectInvalid(refused(no_data), "input 'x': no 'data'");
  nlohmann::json no_shape = JsonBody("FP32", {1}, {1});
  no_shape["inputs"][0].erase("shape");
  ExpectInvalid(refused(no_shape), "input 'x': no 'shape'");
  nlohmann::json no_name = JsonBody("FP32", {1}, {1});
  no_name["inputs"][0].erase("name");
  ExpectInvalid(refused(no_name), "an input needs a string 'name'");
  nlohmann::json number_type = JsonBody("FP32", {1}, {1});
  number_type["inputs"][0]["datatype"] = 1;
  ExpectInvalid(refused(number_type), "an input needs a string 'datatype'");
  ExpectInvalid(refused(nlohmann::json::array()), "the request body must be a JSON object");
  ExpectInvalid(refused({{"inputs", 1}}), "the request needs an 'inputs' array");
  ExpectInvalid(refused({{"inputs", {1}}}), "every entry of 'inputs' must be an object");
  nlohmann::json id = JsonBody("FP32", {1}, {1});
  id["id"] = 7;
  ExpectInvalid(refused(id), "'id' must be a string");
  nlohmann::json outputs = JsonBody("FP32", {1}, {1});
  outputs["outputs"] = nlohmann::json::array({{{"name", 3}}});
  ExpectInvalid(refused(outputs), "every entry of 'outputs' needs a string 'name'");
}

TEST(ServeTensors, OutputsGoOutAsRawGrpcContents) {
  for (const auto& c : Cases()) {
    inference::ModelInferResponse response;
    ToGrpc({MakeTensor(c), {{"z", c.dtype, {0}}, {}}}, response);
    ASSERT_EQ(response.outputs_size(), 2);
    ASSERT_EQ(response.raw_output_contents_size(), 2);
    EXPECT_EQ(response.outputs(0).name(), "y");
    EXPECT_EQ(response.outputs(0).datatype(), c.datatype);
    EXPECT_THAT(response.outputs(0).shape(), ::testing::ElementsAre(2, 2));
    EXPECT_FALSE(response.outputs(0).has_contents());
    EXPECT_EQ(response.raw_output_contents(0), std::string(c.bytes.begin(), c.bytes.end()))
        << c.datatype;
    EXPECT_EQ(response.outputs(1).name(), "z");
    EXPECT_THAT(response.outputs(1).shape(), ::testing::ElementsAre(0));
    EXPECT_EQ(response.raw_output_contents(1), "");
  }
}

TEST(ServeTensors, OutputsGoOutAsJsonNumbersAndReadBackToTheSameBytes) {
  for (const auto& c : Cases()) {
    auto json = ToJson({MakeTensor(c)});
    ASSERT_EQ(json.size(), 1u);
    EXPECT_EQ(json[0]["name"], "y");
    EXPECT_EQ(json[0]["datatype"], c.datatype);
    EXPECT_EQ(json[0]["shape"], nlohmann::json({2, 2}));
    EXPECT_EQ(json[0]["data"], c.values) << c.datatype << ": " << json[0]["data"].dump();
    // What a client sends back of it is the same tensor.
    auto back = FromJson(JsonBody(c.datatype, json[0]["shape"], json[0]["data"]), kMaxBytes);
    EXPECT_EQ(back.inputs[0].data, c.bytes) << c.datatype;
  }
  // Booleans and signed values keep their JSON types.
  auto json = ToJson({{{"b", DType::kBool, {2}}, {1, 0}}, {{"i", DType::kInt8, {1}}, {0xff}}});
  EXPECT_EQ(json[0]["data"].dump(), "[true,false]");
  EXPECT_EQ(json[1]["data"].dump(), "[-1]");
  // Half subnormals and the sign of zero survive.
  json = ToJson({{{"h", DType::kFloat16, {2}}, Bytes<uint16_t>({0x0001, 0x8000})}});
  EXPECT_EQ(json[0]["data"][0].get<double>(), 5.9604644775390625e-08);
  EXPECT_TRUE(std::signbit(json[0]["data"][1].get<double>()));
  EXPECT_EQ(ToJson({{{"e", DType::kFloat, {0}}, {}}})[0]["data"], nlohmann::json::array());
}

}  // namespace
}  // namespace scission::serve
