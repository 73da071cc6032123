#include "common/npy.h"

#include <bit>
#include <cctype>
#include <cstring>
#include <map>
#include <optional>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"

namespace scission {

static_assert(std::endian::native == std::endian::little,
              "the .npy reader assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct DTypeCode {
  const char* code;  // without the byte-order character
  DType dtype;
};
constexpr DTypeCode kCodes[] = {
    {"f2", DType::kFloat16}, {"f4", DType::kFloat},  {"f8", DType::kDouble}, {"i1", DType::kInt8},
    {"i2", DType::kInt16},   {"i4", DType::kInt32},  {"i8", DType::kInt64},  {"u1", DType::kUint8},
    {"u2", DType::kUint16},  {"u4", DType::kUint32}, {"u8", DType::kUint64}, {"b1", DType::kBool}};

using Value = std::variant<std::string, bool, std::vector<int64_t>>;

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& label) : text_(text), label_(label) {}

  std::map<std::string, Value> Dict() {
    std::map<std::string, Value> out;
    Expect('{');
    while (true) {
      Skip();
      if (Peek() == '}') break;
      std::string key = String();
      Expect(':');
      out[key] = Item();
      Skip();
      if (Peek() == ',') {
        ++at_;
        continue;
      }
      Expect('}');
      return out;
    }
    ++at_;
    return out;
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    throw BadInput("{}: .npy header is malformed ({} at byte {})", label_, what, at_);
  }
  void Skip() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  char Peek() {
    Skip();
    if (at_ >= text_.size()) Fail("unexpected end");
    return text_[at_];
  }
  void Expect(char c) {
    if (Peek() != c) Fail("unexpected character");
    ++at_;
  }
  std::string String() {
    char quote = Peek();
    if (quote != '\'' && quote != '"') Fail("expected a string");
    size_t end = text_.find(quote, ++at_);
    if (end == std::string_view::npos) Fail("unterminated string");
    std::string s(text_.substr(at_, end - at_));
    at_ = end + 1;
    return s;
  }
  int64_t Integer() {
    Skip();
    size_t start = at_;
    int64_t value = 0;
    while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) {
      if (value > (INT64_MAX - 9) / 10) Fail("dimension too large");
      value = value * 10 + (text_[at_++] - '0');
    }
    if (at_ == start) Fail("expected a dimension");
    if (at_ < text_.size() && text_[at_] == 'L') ++at_;  // Python 2 writers
    return value;
  }
  Value Item() {
    char c = Peek();
    if (c == '\'' || c == '"') return String();
    if (text_.substr(at_, 4) == "True") {
      at_ += 4;
      return true;
    }
    if (text_.substr(at_, 5) == "False") {
      at_ += 5;
      return false;
    }
    if (c != '(') Fail("unsupported value");
    ++at_;
    std::vector<int64_t> dims;
    while (Peek() != ')') {
      dims.push_back(Integer());
      if (dims.size() > 32) Fail("too many dimensions");
      if (Peek() == ',') ++at_;
    }
    ++at_;
    return dims;
  }

  std::string_view text_;
  const std::string& label_;
  size_t at_ = 0;
};

DType DTypeOf(const std::string& descr, const std::string& label) {
  if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '|' || descr[0] == '=')) {
    for (const auto& c : kCodes)
      if (descr.compare(1, 2, c.code) == 0) {
        if (descr[0] == '|' && DTypeSize(c.dtype) != 1)
          throw BadInput("{}: dtype '{}' has no byte order", label, descr);
        return c.dtype;
      }
  }
  if (!descr.empty() && descr[0] == '>')
    throw BadInput("{}: big-endian data ('{}') is not supported; save it little-endian", label,
                   descr);
  throw BadInput("{}: dtype '{}' is not supported (float16/32/64, int8..64, uint8..64, bool)",
                 label, descr);
}

std::string DescrOf(DType dtype) {
  for (const auto& c : kCodes)
    if (c.dtype == dtype) return (DTypeSize(dtype) == 1 ? "|" : "<") + std::string(c.code);
  throw BadInput("dtype {} cannot be written to .npy", DTypeName(dtype));
}

}  // namespace

Tensor ParseNpy(std::string_view bytes, const std::string& label) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != std::string_view(kMagic, 6))
    throw BadInput("{}: not a NumPy .npy file (no \\x93NUMPY magic)", label);
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw BadInput("{}: truncated .npy header", label);
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    throw BadInput("{}: .npy format version {}.{} is not supported (1.0-3.0)", label, major,
                   static_cast<int>(static_cast<unsigned char>(bytes[7])));
  }
  if (header_len > (1u << 20) || offset + header_len > bytes.size())
    throw BadInput("{}: truncated .npy header", label);
  auto dict = HeaderParser(bytes.substr(offset, header_len), label).Dict();
  auto get = [&](const char* key) -> const Value& {
    auto it = dict.find(key);
    if (it == dict.end()) throw BadInput("{}: .npy header has no '{}'", label, key);
    return it->second;
  };
  const auto* descr = std::get_if<std::string>(&get("descr"));
  const auto* fortran = std::get_if<bool>(&get("fortran_order"));
  const auto* shape = std::get_if<std::vector<int64_t>>(&get("shape"));
  if (!descr || !fortran || !shape)
    throw BadInput("{}: .npy header has a field of the wrong type", label);
  if (*fortran)
    throw BadInput("{}: Fortran-order arrays are not supported; save it C-ordered", label);
  Tensor t;
  t.spec.name = label;
  t.spec.dtype = DTypeOf(*descr, label);
  t.spec.shape = *shape;
  const int64_t count = ElementCount(t.spec.shape);
  const int64_t elem = static_cast<int64_t>(DTypeSize(t.spec.dtype));
  if (count < 0 || count > kMaxNpyBytes / elem)
    throw BadInput("{}: array of shape {} exceeds {} bytes", label, ShapeString(t.spec.shape),
                   kMaxNpyBytes);
  const size_t data = offset + header_len;
  const size_t want = static_cast<size_t>(count * elem);
  if (bytes.size() - data != want)
    throw BadInput("{}: shape {} of {} needs {} data bytes, the file has {}", label,
                   ShapeString(t.spec.shape), DTypeName(t.spec.dtype), want, bytes.size() - data);
  t.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data), bytes.end());
  if (t.spec.dtype == DType::kBool)
    for (uint8_t b : t.data)
      if (b > 1) throw BadInput("{}: bool array holds a byte other than 0 or 1", label);
  return t;
}

Tensor ReadNpy(const std::string& path) { return ParseNpy(ReadFileBytes(path), path); }

std::string SerializeNpy(const Tensor& tensor) {
  std::string shape = "(";
  for (size_t i = 0; i < tensor.spec.shape.size(); ++i)
    shape += std::to_string(tensor.spec.shape[i]) + (tensor.spec.shape.size() == 1 ? "," : ", ");
  if (tensor.spec.shape.size() > 1) shape.resize(shape.size() - 2);
  shape += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   DescrOf(tensor.spec.dtype), shape);
  // Pad so that the data starts on a 64-byte boundary, as NumPy does.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic, 6);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
  return out;
}

}  // namespace scission
