#include "store/sqlite.h"

#include <sqlite3.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/error.h"

namespace scission::store {

namespace {
[[noreturn]] void Fail(sqlite3* db, const std::string& label, std::string_view what) {
  int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
  std::string message = db ? sqlite3_errmsg(db) : "out of memory";
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT || code == SQLITE_CANTOPEN ||
      code == SQLITE_BUSY || code == SQLITE_READONLY || code == SQLITE_CONSTRAINT)
    throw BadInput("{}: {}: {}", label, what, message);
  throw Internal("{}: {}: {}", label, what, message);
}
}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql, const std::string& label)
    : db_(db), label_(label) {
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK)
    Fail(db_, label_, "preparing SQL");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}
Statement& Statement::Bind(int index, std::optional<double> value) {
  return value ? Bind(index, *value) : BindNull(index);
}

bool Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Fail(db_, label_, "executing SQL");
}

void Statement::Run() {
  while (Step()) {
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }
std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
              : std::string();
}
bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Connection::Connection(const std::string& path, OpenFlags flags) : path_(path), flags_(flags) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw BadInput("{}: is a directory, not a database", path);
  int open_flags = flags == OpenFlags::kReadWriteCreate
                       ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI
                       : SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
  // Every path is given as a URI (with '%', '?' and '#' escaped) so that the immutable parameter
  // can be added.
  std::string uri = "file:";
  for (char c : std::filesystem::absolute(path, ec).string()) {
    if (c == '%' || c == '?' || c == '#')
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else
      uri += c;
  }
  if (ec) throw BadInput("{}: cannot resolve the path: {}", path, ec.message());
  if (flags == OpenFlags::kReadOnlyImmutable) uri += "?immutable=1";
  if (sqlite3_open_v2(uri.c_str(), &db_, open_flags, nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw BadInput("{}: cannot open database: {}", path, message);
  }
  sqlite3_busy_timeout(db_, 10000);
  sqlite3_extended_result_codes(db_, 0);
}

Connection::~Connection() { sqlite3_close(db_); }

void Connection::Exec(std::string_view sql) {
  std::string error;
  if (ExecCode(sql, &error) == SQLITE_OK) return;
  int code = sqlite3_errcode(db_);
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT || code == SQLITE_BUSY ||
      code == SQLITE_READONLY || code == SQLITE_CANTOPEN)
    throw BadInput("{}: {}", path_, error);
  throw Internal("{}: {}", path_, error);
}

int Connection::ExecCode(std::string_view sql, std::string* error) {
  char* message = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) *error = message ? message : "unknown";
  sqlite3_free(message);
  return rc;
}

int64_t Connection::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }

void Connection::set_busy_timeout_ms(int ms) { sqlite3_busy_timeout(db_, ms); }

bool Connection::TryBeginImmediate() {
  std::string error;
  int rc = ExecCode("BEGIN IMMEDIATE", &error);
  if (rc == SQLITE_BUSY) return false;
  if (rc != SQLITE_OK) throw BadInput("{}: cannot begin a write: {}", path_, error);
  return true;
}

Transaction::Transaction(Connection& connection, WhenLocked when_locked) : connection_(connection) {
  if (when_locked == WhenLocked::kThrow)
    connection_.Exec("BEGIN IMMEDIATE");
  else
    done_ = !connection_.TryBeginImmediate();
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      connection_.Exec("ROLLBACK");
    } catch (...) {
    }
  }
}

void Transaction::Commit() {
  connection_.Exec("COMMIT");
  done_ = true;
}

}  // namespace scission::store
