#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/graph_builder.h"
#include "graph/model.h"

namespace scission::graph {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  std::string path = ::testing::TempDir() + "/model_test_" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Loads and returns the BadInput message; fails the test if loading succeeds.
std::string LoadError(const std::string& path) {
  try {
    LoadModel(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
  ADD_FAILURE() << path << " loaded but should not";
  return "";
}

TEST(LoadModel, AcceptsValidModelAndInfersShapes) {
  auto path = WriteTemp("ok.onnx", testing::ChainModel(2).SerializeAsString());
  auto model = LoadModel(path);
  EXPECT_EQ(model.sha256.size(), 64u);
  EXPECT_GT(model.proto.graph().value_info_size(), 0);  // shape inference ran
}

TEST(LoadModel, RejectsTruncatedFile) {
  std::string bytes = testing::ChainModel(3).SerializeAsString();
  auto path = WriteTemp("trunc.onnx", bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(LoadError(path), StartsWith(path + ": "));
}

TEST(LoadModel, RejectsEveryTruncationPoint) {
  std::string bytes = testing::ResidualModel(1).SerializeAsString();
  for (size_t cut = 1; cut < bytes.size(); cut += 97) {
    auto path = WriteTemp("trunc_each.onnx", bytes.substr(0, cut));
    EXPECT_THAT(LoadError(path), StartsWith(path + ": ")) << "cut at " << cut;
  }
}

TEST(LoadModel, RejectsRandomBytes) {
  std::string bytes;
  uint32_t state = 12345;
  for (int i = 0; i < 4096; ++i) {
    state = state * 1664525u + 1013904223u;
    bytes.push_back(static_cast<char>(state >> 24));
  }
  auto path = WriteTemp("random.onnx", bytes);
  EXPECT_THAT(LoadError(path), StartsWith(path + ": "));
}

TEST(LoadModel, RejectsNodeReadingUnknownTensor) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4})
      .Node("Relu", {"x"}, {"a"})
      .Node("Add", {"a", "ghost"}, {"y"})
      .Output("y", {1, 4});
  auto path = WriteTemp("dangling.onnx", b.Bytes());
  auto message = LoadError(path);
  EXPECT_THAT(message, StartsWith(path + ": "));
  EXPECT_THAT(message, HasSubstr("ghost"));
}

TEST(LoadModel, RejectsDirectoryAndMissingPath) {
  std::string dir = ::testing::TempDir() + "/model_test_dir.onnx";
  std::filesystem::create_directories(dir);
  EXPECT_THAT(LoadError(dir), HasSubstr("is a directory"));
  EXPECT_THAT(LoadError("/definitely/not/here.onnx"),
              StartsWith("/definitely/not/here.onnx: no such file"));
}

TEST(LoadModel, OpsetsNewerThanTheOnnxLibraryAreLeftToOnnxRuntime) {
  // Before: "unsupported opset 18 (supported: 7..17)", Debian's libonnx 1.12 being the limit.
  for (int opset : {OnnxLibraryMaxOpset() + 1, 20, 21}) {
    auto model =
        LoadModel(WriteTemp("newer.onnx", testing::ReduceMeanModel(opset).SerializeAsString()));
    EXPECT_FALSE(model.onnx_checked) << opset;
    EXPECT_EQ(model.proto.graph().value_info_size(), 0) << "no shape inference with old schemas";
  }
  auto known = LoadModel(WriteTemp("known.onnx", testing::ChainModel(2).SerializeAsString()));
  EXPECT_TRUE(known.onnx_checked);
  testing::GraphBuilder ancient(3);
  ancient.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y", {1, 4});
  auto path = WriteTemp("ancient.onnx", ancient.Bytes());
  EXPECT_EQ(LoadError(path), path + ": opset 3 is older than the oldest supported (7)");
}

TEST(LoadModel, ContribOperatorsSkipTheOnnxLibrary) {
  // Before: "unsupported operator domain 'com.microsoft'". The ONNX library's shape inference
  // must not see such nodes at all: on a node it has no schema for it reads freed memory.
  auto model = LoadModel(WriteTemp("contrib.onnx", testing::ContribModel().SerializeAsString()));
  EXPECT_FALSE(model.onnx_checked);
  EXPECT_FALSE(KnownToOnnxLibrary(testing::ContribModel()));
  EXPECT_TRUE(KnownToOnnxLibrary(testing::QuantizedModel()));
}

TEST(LoadModel, UnusedOpsetImportsAreDropped) {
  // Before: "unsupported operator domain 'ai.onnx.training'" although no node uses it.
  auto proto = testing::ChainModel(2);
  for (const char* domain : {"ai.onnx.training", "com.example.unused"}) {
    auto* op = proto.add_opset_import();
    op->set_domain(domain);
    op->set_version(1);
  }
  auto model = LoadModel(WriteTemp("unused_import.onnx", proto.SerializeAsString()));
  ASSERT_EQ(model.proto.opset_import_size(), 1);
  EXPECT_EQ(model.proto.opset_import(0).domain(), "");
  EXPECT_TRUE(model.onnx_checked);
}

TEST(LoadModel, NodesOutOfOrderAreSortedBeforeTheChecker) {
  // Before: "Nodes in a graph must be topologically sorted". Also inside subgraphs.
  auto model =
      LoadModel(WriteTemp("reversed.onnx", testing::ReversedChainModel().SerializeAsString()));
  EXPECT_TRUE(model.onnx_checked);
  std::vector<std::string> order;
  for (const auto& node : model.proto.graph().node()) order.push_back(node.output(0));
  EXPECT_EQ(order, (std::vector<std::string>{"c0", "r0", "c1", "r1", "c2", "r2"}));

  auto nested = testing::NestedIfModel(2);
  auto* then = nested.mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_g();
  auto* inner = then->mutable_node(0)->mutable_attribute(0)->mutable_g();
  inner->mutable_node(0)->set_output(0, "mid");
  auto* second = inner->add_node();  // o2 = Identity(mid), listed after; then swap the two
  second->set_op_type("Identity");
  second->add_input("mid");
  second->add_output("o2");
  inner->mutable_node()->SwapElements(0, 1);
  auto loaded = LoadModel(WriteTemp("nested_unsorted.onnx", nested.SerializeAsString()));
  const auto& sorted = loaded.proto.graph().node(1).attribute(0).g().node(0).attribute(0).g();
  EXPECT_EQ(sorted.node(0).output(0), "mid");
  EXPECT_EQ(sorted.node(1).output(0), "o2");
}

TEST(LoadModel, CyclesAndTensorsWrittenTwiceAreNamedWithoutTheChecker) {
  // Opset 20: the ONNX checker does not run, Scission's own checks do.
  testing::GraphBuilder cycle(20);
  cycle.Input("x", {1, 4}).Node("Add", {"x", "b"}, {"a"}).Node("Relu", {"a"}, {"b"});
  cycle.Output("b", {1, 4});
  auto path = WriteTemp("cycle.onnx", cycle.Bytes());
  EXPECT_EQ(LoadError(path), path + ": graph has a cycle (its nodes cannot be put in an order)");
  testing::GraphBuilder twice(20);
  twice.Input("x", {1, 4}).Node("Relu", {"x"}, {"a"}).Node("Neg", {"x"}, {"a"});
  twice.Output("a", {1, 4});
  path = WriteTemp("twice.onnx", twice.Bytes());
  EXPECT_EQ(LoadError(path), path + ": tensor 'a' is produced more than once");
  testing::GraphBuilder dangling(20);
  dangling.Input("x", {1, 4}).Node("Add", {"x", "ghost"}, {"y"}).Output("y", {1, 4});
  EXPECT_THAT(LoadError(WriteTemp("dangling20.onnx", dangling.Bytes())), HasSubstr("'ghost'"));
}

TEST(LoadModel, RejectsEmptyFileAndUnknownOpIsLeftToOnnxRuntime) {
  EXPECT_THAT(LoadError(WriteTemp("empty.onnx", "")), HasSubstr("empty"));
  // The ONNX library does not know NoSuchOp, so neither its checker nor its shape inference
  // runs; profile::OpenModel's ONNX Runtime session refuses it (tests/profile/open_test.cpp).
  testing::GraphBuilder b;
  b.Input("x", {1, 4}).Node("NoSuchOp", {"x"}, {"y"}).Output("y", {1, 4});
  EXPECT_FALSE(LoadModel(WriteTemp("unknown_op.onnx", b.Bytes())).onnx_checked);
}

// --- External data -------------------------------------------------------------------------

// ParseModel's BadInput message; fails the test if parsing succeeds.
std::string ParseError(const onnx::ModelProto& model) {
  try {
    ParseModel(model.SerializeAsString(), "net.onnx");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    return e.what();
  }
  ADD_FAILURE() << "parsed but should not";
  return "";
}

// Every place a TensorProto can sit, each pointing at `location`.
std::vector<std::pair<std::string, onnx::ModelProto>> ExternalDataEverywhere(
    const std::string& location) {
  std::vector<std::pair<std::string, onnx::ModelProto>> models;
  models.emplace_back("Constant value", testing::ExternalConstantModel(location));
  models.emplace_back("Constant in an If branch", testing::ExternalConstantModel(location, true));
  auto with_initializer = testing::ChainModel(1);
  *with_initializer.mutable_graph()->mutable_initializer(1) =
      testing::ExternalTensor("w0_b", 4, location);
  models.emplace_back("initializer", with_initializer);
  auto sparse = testing::ChainModel(1);
  auto* s = sparse.mutable_graph()->add_sparse_initializer();
  *s->mutable_values() = testing::ExternalTensor("unused_sparse", 1, location);
  s->mutable_indices()->set_data_type(onnx::TensorProto::INT64);
  s->mutable_indices()->add_dims(1);
  s->mutable_indices()->add_int64_data(0);
  s->add_dims(4);
  models.emplace_back("sparse initializer", sparse);
  for (const char* list : {"tensors", "sparse_tensor", "sparse_tensors"}) {
    auto m = testing::ChainModel(1);
    auto* attr = m.mutable_graph()->mutable_node(0)->add_attribute();
    attr->set_name(std::string("extra_") + list);
    if (std::string(list) == "tensors") {
      attr->set_type(onnx::AttributeProto::TENSORS);
      *attr->add_tensors() = testing::ExternalTensor("", 4, location);
    } else {
      onnx::SparseTensorProto sparse_value;
      *sparse_value.mutable_indices() = testing::ExternalTensor("", 1, location);
      sparse_value.add_dims(4);
      if (std::string(list) == "sparse_tensor") {
        attr->set_type(onnx::AttributeProto::SPARSE_TENSOR);
        *attr->mutable_sparse_tensor() = sparse_value;
      } else {
        attr->set_type(onnx::AttributeProto::SPARSE_TENSORS);
        *attr->add_sparse_tensors() = sparse_value;
      }
    }
    models.emplace_back(std::string("attribute ") + list, m);
  }
  // An initializer three subgraphs down.
  auto nested = testing::NestedIfModel(3);
  auto* g = nested.mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_g();
  g = g->mutable_node(0)->mutable_attribute(0)->mutable_g();
  g = g->mutable_node(0)->mutable_attribute(0)->mutable_g();
  *g->add_initializer() = testing::ExternalTensor("deep", 4, location);
  models.emplace_back("initializer in a subgraph 3 deep", nested);
  // Entries without data_location = EXTERNAL still name a file.
  auto entries_only = testing::ExternalConstantModel(location);
  entries_only.mutable_graph()
      ->mutable_node(1)
      ->mutable_attribute(0)
      ->mutable_t()
      ->clear_data_location();
  models.emplace_back("external_data entries only", entries_only);
  return models;
}

TEST(ParseModel, RefusesExternalDataAnywhereWithoutLookingAtTheFileSystem) {
  // One path that exists and one that does not: the answers must not tell them apart.
  std::string present = ::testing::TempDir() + "/model_test_present.bin";
  std::string missing = ::testing::TempDir() + "/model_test_missing.bin";
  std::ofstream(present, std::ios::binary) << std::string(64, '\x01');
  std::filesystem::remove(missing);
  auto with_present = ExternalDataEverywhere(present);
  auto with_missing = ExternalDataEverywhere(missing);
  ASSERT_EQ(with_present.size(), with_missing.size());
  for (size_t i = 0; i < with_present.size(); ++i) {
    SCOPED_TRACE(with_present[i].first);
    std::string a = ParseError(with_present[i].second);
    std::string b = ParseError(with_missing[i].second);
    EXPECT_THAT(a, StartsWith("net.onnx: "));
    EXPECT_THAT(a, HasSubstr("external data '" + present + "' is not accepted"));
    EXPECT_THAT(a, ::testing::Not(HasSubstr("checker")));
    a.replace(a.find(present), present.size(), "<path>");
    b.replace(b.find(missing), missing.size(), "<path>");
    EXPECT_EQ(a, b);
  }
  // The same for names that ONNX Runtime resolves itself, relative or magic.
  EXPECT_THAT(ParseError(testing::ExternalConstantModel("weights.bin")),
              HasSubstr("external data 'weights.bin' is not accepted"));
  EXPECT_THAT(ParseError(testing::ExternalConstantModel("*/_ORT_MEM_ADDR_/*")),
              HasSubstr("is not accepted"));
}

class ExternalDataFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/model_test_external_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/sub");
    float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    std::ofstream(dir_ + "/weights.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(values), sizeof(values));
  }
  std::string Write(const onnx::ModelProto& model, const std::string& name = "net.onnx") {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << model.SerializeAsString();
    return path;
  }
  std::string dir_;
};

TEST_F(ExternalDataFile, InsideTheModelDirectoryIsReadIntoTheModel) {
  std::filesystem::copy_file(dir_ + "/weights.bin", dir_ + "/sub/more.bin");
  auto model = testing::ExternalConstantModel("weights.bin");
  auto with_offset = testing::ExternalTensor("w0_b", 4, "sub/more.bin", 16);
  auto chain = testing::ChainModel(1);
  *chain.mutable_graph()->mutable_initializer(1) = with_offset;
  for (const auto& [proto, expected_first] :
       std::vector<std::pair<onnx::ModelProto, float>>{{model, 1.0f}, {chain, 5.0f}}) {
    auto loaded = LoadModel(Write(proto));
    bool found = false;
    for (const auto& init : loaded.proto.graph().initializer())
      if (init.name() == "w0_b") {
        found = true;
        ASSERT_EQ(init.raw_data().size(), 16u);
        float first;
        std::memcpy(&first, init.raw_data().data(), 4);
        EXPECT_EQ(first, expected_first);
        EXPECT_EQ(init.external_data_size(), 0);
      }
    for (const auto& node : loaded.proto.graph().node())
      for (const auto& attr : node.attribute())
        if (attr.has_t()) {
          found = true;
          EXPECT_EQ(attr.t().raw_data().size(), 16u);
          EXPECT_EQ(attr.t().data_location(), onnx::TensorProto::DEFAULT);
          EXPECT_EQ(attr.t().external_data_size(), 0);
        }
    EXPECT_TRUE(found);
  }
  // Inside a subgraph too, and a symlink that stays inside the directory is fine.
  std::filesystem::create_symlink("weights.bin", dir_ + "/alias.bin");
  EXPECT_NO_THROW(LoadModel(Write(testing::ExternalConstantModel("alias.bin", true))));
  // A cache of bytes from the network refuses it even from a file.
  EXPECT_THROW(LoadModel(Write(model), ExternalData::kRefuse), Error);
}

TEST_F(ExternalDataFile, AnythingElseIsRefusedWithTheTensorAndLocation) {
  std::filesystem::create_symlink("/etc/passwd", dir_ + "/escape.bin");
  std::filesystem::create_symlink("..", dir_ + "/up");
  std::ofstream(::testing::TempDir() + "/model_test_outside.bin") << std::string(16, 'x');
  struct Case {
    std::string location;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"/etc/passwd", "is an absolute path"},
      {"/etc/passwd-missing", "is an absolute path"},
      {"../model_test_outside.bin", "leaves the model's directory"},
      {"sub/../../model_test_outside.bin", "leaves the model's directory"},
      {"escape.bin", "resolves (through a symbolic link) outside"},
      {"up/model_test_outside.bin", "resolves (through a symbolic link) outside"},
      {"sub", "is not a regular file"},
      {"nothing.bin", "cannot be read: no such file in the model's directory"},
      {"", "has no location"},
  };
  for (const auto& c : cases) {
    std::string path = Write(testing::ExternalConstantModel(c.location));
    EXPECT_THAT(LoadError(path),
                StartsWith(path + ": tensor 'k': external data '" + c.location + "' " + c.why))
        << c.location;
  }
  // Offsets and lengths are checked against the file and the tensor.
  auto model = testing::ExternalConstantModel("weights.bin");
  auto* tensor = model.mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_t();
  auto* entry = tensor->add_external_data();
  entry->set_key("offset");
  entry->set_value("24");
  EXPECT_THAT(LoadError(Write(model)),
              HasSubstr("needs 16 bytes at offset 24 but the file holds 32"));
  entry->set_value("-4");
  EXPECT_THAT(LoadError(Write(model)), HasSubstr("has offset '-4', not a non-negative integer"));
  entry->set_key("length");
  entry->set_value("12");
  EXPECT_THAT(LoadError(Write(model)), HasSubstr("has length 12 but the tensor's shape needs 16"));
  entry->set_key("mmap_everything");
  EXPECT_THAT(LoadError(Write(model)), HasSubstr("unknown key 'mmap_everything'"));
}

// --- Nesting, functions, sizes -----------------------------------------------------------------

TEST(ParseModel, BoundsSubgraphNesting) {
  EXPECT_NO_THROW(
      ParseModel(testing::NestedIfModel(MaxSubgraphDepth()).SerializeAsString(), "deep.onnx"));
  EXPECT_EQ(ParseError(testing::NestedIfModel(MaxSubgraphDepth() + 1)),
            fmt::format("net.onnx: subgraphs nested {} deep; at most {} are supported",
                        MaxSubgraphDepth() + 1, MaxSubgraphDepth()));
  // Deeper than protobuf's default limit of 100 messages: still measured and named.
  EXPECT_EQ(ParseError(testing::NestedIfModel(40)),
            fmt::format("net.onnx: subgraphs nested 40 deep; at most {} are supported",
                        MaxSubgraphDepth()));
}

TEST(ParseModel, RefusesTypesNestedBeyondWhatOnnxRuntimeReads) {
  auto model = testing::ChainModel(1);
  auto* type = model.mutable_graph()->add_input();
  type->set_name("unused");
  auto* t = type->mutable_type();
  for (int i = 0; i < 60; ++i) t = t->mutable_sequence_type()->mutable_elem_type();
  t->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  EXPECT_THAT(ParseError(model), HasSubstr("protobuf messages nested more than 100 deep"));
}

TEST(ParseModel, RefusesModelLocalFunctions) {
  auto model = testing::ChainModel(1);
  auto* f = model.add_functions();
  f->set_name("Twice");
  f->set_domain("com.microsoft");
  EXPECT_THAT(ParseError(model), HasSubstr("model-local functions ('Twice') are not supported"));
}

TEST(ParseModel, ChecksTensorSizesInsideSubgraphsAndAttributes) {
  auto model = testing::ExternalConstantModel("unused", true);
  auto* then = model.mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_g();
  auto* value = then->mutable_node(0)->mutable_attribute(0)->mutable_t();
  value->clear_external_data();
  value->clear_data_location();
  value->set_raw_data(std::string(12, '\0'));  // 3 floats for a [4] tensor
  EXPECT_THAT(ParseError(model), HasSubstr("holds 12 bytes but its shape needs 16"));
}

TEST(ParseModel, NothingToSplitWhenEveryOutputComesFromConstants) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4}).Weight("w", {1, 4});
  b.Node("Relu", {"x"}, {"unused"});
  b.Node("Relu", {"w"}, {"k"});
  b.Output("k", {1, 4});
  EXPECT_EQ(ParseError(b.Build()),
            "net.onnx: nothing to split: every output is computed from constants");
}

// --- Fuzz corpus ------------------------------------------------------------------------------

// Seeds for fuzz/corpus/onnx, built here so the corpus holds no hand-made binaries. With
// SCISSION_WRITE_FUZZ_SEEDS=1 this test (re)writes them; otherwise it checks each committed seed
// still reaches the code path it was made for.
TEST(FuzzCorpus, SeedsReachTheirCodePaths) {
  testing::GraphBuilder wide;
  wide.Input("x", {1, 4});
  std::vector<std::string> branches;
  for (int i = 0; i < 64; ++i) {
    branches.push_back("b" + std::to_string(i));
    wide.Node(i % 2 ? "Relu" : "Sigmoid", {"x"}, {branches.back()});
  }
  wide.Node("Sum", branches, {"y"}).Output("y", {1, 4});
  struct Seed {
    const char* file;
    onnx::ModelProto model;
    const char* error;  // substring of the expected error; empty: the model loads
  };
  const std::vector<Seed> seeds = {
      {"external_constant.bin", testing::ExternalConstantModel("/etc/passwd"),
       "external data '/etc/passwd' is not accepted"},
      {"external_in_subgraph.bin", testing::ExternalConstantModel("weights.bin", true),
       "external data 'weights.bin' is not accepted"},
      {"nested_if_40.bin", testing::NestedIfModel(40), "subgraphs nested 40 deep"},
      {"nested_if_24.bin", testing::NestedIfModel(24), ""},
      {"constant_outputs.bin", testing::ConstantOutputsModel(), ""},
      {"eyelike.bin", testing::EyeLikeModel(), ""},
      {"random_noise.bin", testing::RandomNoiseModel(), ""},
      {"wide_fanout.bin", wide.Build(), ""},
  };
  const std::string dir = std::string(SCISSION_SOURCE_DIR) + "/fuzz/corpus/onnx/";
  const char* write = std::getenv("SCISSION_WRITE_FUZZ_SEEDS");
  for (const auto& seed : seeds) {
    SCOPED_TRACE(seed.file);
    if (write && std::string(write) == "1")
      std::ofstream(dir + seed.file, std::ios::binary) << seed.model.SerializeAsString();
    std::ifstream in(dir + seed.file, std::ios::binary);
    ASSERT_TRUE(in) << "missing seed; run with SCISSION_WRITE_FUZZ_SEEDS=1";
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_LT(bytes.size(), 8000u);
    if (std::string(seed.error).empty()) {
      EXPECT_NO_THROW(ParseModel(bytes, seed.file));
    } else {
      EXPECT_THROW(
          try { ParseModel(bytes, seed.file); } catch (const Error& e) {
            EXPECT_THAT(e.what(), HasSubstr(seed.error));
            throw;
          },
          Error);
    }
  }
}

}  // namespace
}  // namespace scission::graph
