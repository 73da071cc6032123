#include "store/pickle.h"

#include <bit>
#include <cstring>

#include "common/error.h"

namespace scission::store::pickle {

namespace {

constexpr size_t kMaxMemo = 1u << 20;
constexpr size_t kMaxStack = 1u << 20;

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& label, const std::string& allowed)
      : bytes_(bytes), label_(label), allowed_(allowed) {}

  Document Run() {
    while (true) {
      if (pos_ >= bytes_.size()) Fail("ends without STOP (truncated file)");
      op_pos_ = pos_;
      auto op = static_cast<uint8_t>(bytes_[pos_++]);
      switch (op) {
        case 0x80: {  // PROTO
          uint8_t version = U8();
          if (version < 2 || version > 4)
            Fail("unsupported pickle protocol " + std::to_string(version));
          break;
        }
        case 0x95:
          Take(8);
          break;  // FRAME: length only, data follows inline
        case '}':
          Push(Make(Dict{}));
          break;
        case ']':
          Push(Make(List{}));
          break;
        case ')':
          Push(Make(Tuple{}));
          break;
        case '(':
          marks_.push_back(stack_.size());
          break;
        case 'X':
          Push(Make(std::string(Take(U32()))));
          break;  // BINUNICODE
        case 0x8c:
          Push(Make(std::string(Take(U8()))));
          break;  // SHORT_BINUNICODE
        case 'c':
          Global();
          break;
        case 0x81:
          NewObj();
          break;
        case 'b':
          Build();
          break;
        case 'u':
          SetItems();
          break;
        case 's':
          SetItem();
          break;
        case 'e':
          Appends();
          break;
        case 'a':
          Append();
          break;
        case 'q':
          Put(U8());
          break;
        case 'r':
          Put(U32());
          break;
        case 'h':
          Get(U8());
          break;
        case 'j':
          Get(U32());
          break;
        case 'J': {
          uint32_t raw = U32();
          int32_t value;
          std::memcpy(&value, &raw, 4);
          Push(Make(static_cast<int64_t>(value)));
          break;
        }
        case 'K':
          Push(Make(static_cast<int64_t>(U8())));
          break;
        case 'M': {
          auto b = Take(2);
          Push(Make(static_cast<int64_t>(static_cast<uint8_t>(b[0]) |
                                         (static_cast<uint8_t>(b[1]) << 8))));
          break;
        }
        case 0x8a:
          Long1();
          break;
        case 'G': {
          auto b = Take(8);
          uint64_t raw = 0;
          for (int i = 0; i < 8; ++i) raw = (raw << 8) | static_cast<uint8_t>(b[i]);
          Push(Make(std::bit_cast<double>(raw)));
          break;
        }
        case 'N':
          Push(Make(None{}));
          break;
        case '.': {
          if (stack_.size() != 1 || !marks_.empty()) Fail("STOP with an unbalanced stack");
          doc_.root = stack_.back();
          return std::move(doc_);
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", op);
          Fail(std::string("opcode ") + hex + " is not allowed in a Scission benchmark file");
        }
      }
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw BadInput("{}: offset {}: {}", label_, op_pos_, what);
  }
  template <typename T>
  ValuePtr Make(T value) {
    auto v = std::make_unique<Value>();
    v->v = std::move(value);
    v->offset = op_pos_;
    doc_.arena.push_back(std::move(v));
    return doc_.arena.back().get();
  }
  std::string_view Take(size_t n) {
    if (n > bytes_.size() - pos_) Fail("truncated: needs " + std::to_string(n) + " more bytes");
    auto out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint8_t U8() { return static_cast<uint8_t>(Take(1)[0]); }
  uint32_t U32() {
    auto b = Take(4);
    return static_cast<uint32_t>(static_cast<uint8_t>(b[0])) |
           (static_cast<uint32_t>(static_cast<uint8_t>(b[1])) << 8) |
           (static_cast<uint32_t>(static_cast<uint8_t>(b[2])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(b[3])) << 24);
  }
  void Push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) Fail("stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr Pop() {
    size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() <= floor) Fail("stack underflow");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& Top() {
    size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() <= floor) Fail("stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> PopToMark() {
    if (marks_.empty()) Fail("no MARK on the stack");
    size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  std::string Line() {
    auto end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos || end - pos_ > 256) Fail("malformed GLOBAL");
    std::string line(bytes_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }
  void Global() {
    std::string module = Line();
    std::string name = Line();
    std::string full = module + "." + name;
    if (full != allowed_) Fail("refusing global '" + full + "' (only " + allowed_ + " is allowed)");
    Push(Make(Object{full, nullptr}));  // the class itself; NEWOBJ instantiates it
  }
  void NewObj() {
    auto args = Pop();
    auto cls = Pop();
    auto* tuple = std::get_if<Tuple>(&args->v);
    auto* object = std::get_if<Object>(&cls->v);
    if (!tuple || !object || object->state) Fail("NEWOBJ needs a class and an argument tuple");
    if (!tuple->items.empty()) Fail("NEWOBJ with arguments is not expected");
    Push(Make(Object{object->class_name, nullptr}));
  }
  void Build() {
    auto state = Pop();
    auto& target = Top();
    auto* object = std::get_if<Object>(&target->v);
    if (!object) Fail("BUILD on something that is not an object");
    if (!std::holds_alternative<Dict>(state->v)) Fail("BUILD state must be a dict");
    object->state = state;
  }
  Dict& DictAt(ValuePtr& v) {
    auto* dict = std::get_if<Dict>(&v->v);
    if (!dict) Fail("SETITEM(S) on something that is not a dict");
    return *dict;
  }
  void SetItems() {
    auto items = PopToMark();
    if (items.size() % 2) Fail("SETITEMS with an odd number of items");
    auto& dict = DictAt(Top());
    for (size_t i = 0; i < items.size(); i += 2) dict.items.emplace_back(items[i], items[i + 1]);
  }
  void SetItem() {
    auto value = Pop();
    auto key = Pop();
    DictAt(Top()).items.emplace_back(key, value);
  }
  List& ListAt(ValuePtr& v) {
    auto* list = std::get_if<List>(&v->v);
    if (!list) Fail("APPEND(S) on something that is not a list");
    return *list;
  }
  void Appends() {
    auto items = PopToMark();
    auto& list = ListAt(Top());
    list.items.insert(list.items.end(), items.begin(), items.end());
  }
  void Append() {
    ValuePtr value = Pop();
    ListAt(Top()).items.push_back(value);
  }
  void Put(uint32_t index) {
    if (index >= kMaxMemo) Fail("memo index too large");
    if (memo_.size() <= index) memo_.resize(index + 1);
    memo_[index] = Top();
  }
  void Get(uint32_t index) {
    if (index >= memo_.size() || !memo_[index])
      Fail("memo index " + std::to_string(index) + " unset");
    Push(memo_[index]);
  }
  void Long1() {
    uint8_t n = U8();
    if (n > 8) Fail("LONG1 integer wider than 64 bits");
    auto b = Take(n);
    uint64_t raw = 0;
    for (int i = n - 1; i >= 0; --i)
      raw = (raw << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80))
      raw |= ~uint64_t{0} << (8 * n);  // sign-extend
    int64_t value;
    std::memcpy(&value, &raw, 8);
    Push(Make(value));
  }

  std::string_view bytes_;
  const std::string& label_;
  const std::string& allowed_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::vector<ValuePtr> memo_;
  Document doc_;
};

}  // namespace

Document Parse(std::string_view bytes, const std::string& label, const std::string& allowed_class) {
  if (bytes.empty()) throw BadInput("{}: empty file, not a pickle", label);
  return Reader(bytes, label, allowed_class).Run();
}

}  // namespace scission::store::pickle
