#include "runtime/onnxruntime_backend.h"

#include <cstring>

#include <onnxruntime_cxx_api.h>

#include "common/error.h"
#include "runtime/backend.h"

#ifndef SCISSION_BUILD_TYPE
#define SCISSION_BUILD_TYPE "unknown"
#endif

namespace scission::runtime {

namespace {

Ort::Env& Environment() {
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "scission");
  return env;
}

TensorSpec SpecFromTypeInfo(const std::string& name, const Ort::TypeInfo& info) {
  TensorSpec spec;
  spec.name = name;
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) return spec;
  auto tensor = info.GetTensorTypeAndShapeInfo();
  spec.dtype = static_cast<DType>(tensor.GetElementType());
  spec.shape = tensor.GetShape();
  return spec;
}

class OrtSession final : public Session {
 public:
  OrtSession(std::string_view bytes, const SessionOptions& options, const std::string& label)
      : label_(label) {
    Ort::SessionOptions so;
    if (options.threads > 0) so.SetIntraOpNumThreads(options.threads);
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    session_ = Ort::Session(Environment(), bytes.data(), bytes.size(), so);
    Ort::AllocatorWithDefaultOptions allocator;
    for (size_t i = 0; i < session_.GetInputCount(); ++i) {
      input_names_.push_back(session_.GetInputNameAllocated(i, allocator).get());
      inputs_.push_back(SpecFromTypeInfo(input_names_.back(), session_.GetInputTypeInfo(i)));
    }
    for (size_t i = 0; i < session_.GetOutputCount(); ++i) {
      output_names_.push_back(session_.GetOutputNameAllocated(i, allocator).get());
      outputs_.push_back(SpecFromTypeInfo(output_names_.back(), session_.GetOutputTypeInfo(i)));
    }
    for (const auto& n : input_names_) input_cstr_.push_back(n.c_str());
    for (const auto& n : output_names_) output_cstr_.push_back(n.c_str());
  }

  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }

  void BindInputs(const std::vector<Tensor>& tensors) override { bound_ = MakeValues(tensors); }

  std::vector<Tensor> Infer(const std::vector<Tensor>& inputs, CancelToken* cancel) override {
    std::vector<Ort::Value> values = MakeValues(inputs);
    std::vector<Ort::Value> results;
    Ort::RunOptions run_options;
    CancelToken::Registration stop;
    if (cancel) stop = cancel->OnCancel([&run_options] { run_options.SetTerminate(); });
    try {
      results = session_.Run(run_options, input_cstr_.data(), values.data(), values.size(),
                             output_cstr_.data(), output_cstr_.size());
    } catch (const Ort::Exception& e) {
      if (cancel) cancel->ThrowIfCancelled(label_);
      throw BadInput("{}: ONNX Runtime failed to run: {}", label_, e.what());
    }
    return CopyOut(results);
  }

  void Terminate() override { run_options_.SetTerminate(); }

  std::vector<Ort::Value> MakeValues(const std::vector<Tensor>& tensors) const {
    if (tensors.size() != inputs_.size())
      throw BadInput("{}: expects {} inputs, got {}", label_, inputs_.size(), tensors.size());
    std::vector<Ort::Value> values;
    auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      const TensorSpec& want = inputs_[i];
      if (t.spec.dtype != want.dtype)
        throw BadInput("{}: input '{}' must be {}, got {}", label_, want.name,
                       DTypeName(want.dtype), DTypeName(t.spec.dtype));
      bool shape_ok = t.spec.shape.size() == want.shape.size();
      for (size_t d = 0; shape_ok && d < want.shape.size(); ++d)
        shape_ok = want.shape[d] < 0 || want.shape[d] == t.spec.shape[d];
      if (!shape_ok)
        throw BadInput("{}: input '{}' must have shape {}, got {}", label_, want.name,
                       ShapeString(want.shape), ShapeString(t.spec.shape));
      if (t.spec.bytes() < 0 || static_cast<size_t>(t.spec.bytes()) != t.data.size())
        throw BadInput("{}: input '{}' holds {} bytes, its shape needs {}", label_, want.name,
                       t.data.size(), t.spec.bytes());
      values.push_back(Ort::Value::CreateTensor(
          memory, const_cast<uint8_t*>(t.data.data()), t.data.size(), t.spec.shape.data(),
          t.spec.shape.size(), static_cast<ONNXTensorElementDataType>(t.spec.dtype)));
    }
    return values;
  }

  void Run() override {
    if (bound_.size() != inputs_.size()) throw Internal("{}: Run() before BindInputs()", label_);
    try {
      results_ = session_.Run(run_options_, input_cstr_.data(), bound_.data(), bound_.size(),
                              output_cstr_.data(), output_cstr_.size());
    } catch (const Ort::Exception& e) {
      throw BadInput("{}: ONNX Runtime failed to run: {}", label_, e.what());
    }
  }

  std::vector<Tensor> FetchOutputs() const override { return CopyOut(results_); }

  std::vector<Tensor> CopyOut(const std::vector<Ort::Value>& results) const {
    std::vector<Tensor> out;
    for (size_t i = 0; i < results.size(); ++i) {
      const Ort::Value& value = results[i];
      // A model may output sequences or maps; asking them for tensor info throws Ort::Exception.
      if (!value.IsTensor())
        throw BadInput(
            "{}: output '{}' is not a tensor (a sequence or map), which Scission cannot "
            "carry",
            label_, output_names_[i]);
      auto info = value.GetTensorTypeAndShapeInfo();
      Tensor t;
      t.spec.name = output_names_[i];
      t.spec.dtype = static_cast<DType>(info.GetElementType());
      t.spec.shape = info.GetShape();
      int64_t bytes = t.spec.bytes();
      if (bytes < 0) throw BadInput("{}: output '{}' has unsupported type", label_, t.spec.name);
      t.data.resize(static_cast<size_t>(bytes));
      if (bytes > 0) std::memcpy(t.data.data(), value.GetTensorRawData(), t.data.size());
      out.push_back(std::move(t));
    }
    return out;
  }

 private:
  std::string label_;
  Ort::Session session_{nullptr};
  Ort::RunOptions run_options_;
  std::vector<std::string> input_names_, output_names_;
  std::vector<const char*> input_cstr_, output_cstr_;
  std::vector<TensorSpec> inputs_, outputs_;
  std::vector<Ort::Value> bound_;
  std::vector<Ort::Value> results_;
};

class OrtBackend final : public Backend {
 public:
  std::string name() const override { return "onnxruntime"; }

  Provenance provenance(const SessionOptions& options) const override {
    Provenance p;
    p.backend = name();
    p.runtime_version = OnnxRuntimeVersion();
    p.execution_provider = "CPUExecutionProvider";
    p.threads = options.threads;
    p.cpu_model = CpuModel();
    p.host = HostName();
    p.build_type = SCISSION_BUILD_TYPE;
    return p;
  }

  std::unique_ptr<Session> Prepare(std::string_view model_bytes, const SessionOptions& options,
                                   const std::string& label) override {
    options.Validate();
    try {
      return std::make_unique<OrtSession>(model_bytes, options, label);
    } catch (const Ort::Exception& e) {
      throw BadInput("{}: ONNX Runtime cannot load it: {}", label, e.what());
    }
  }
};

}  // namespace

std::string OnnxRuntimeVersion() { return OrtGetApiBase()->GetVersionString(); }

void RegisterOnnxRuntimeBackend() {
  RegisterBackend("onnxruntime", [] { return std::make_unique<OrtBackend>(); });
}

}  // namespace scission::runtime
