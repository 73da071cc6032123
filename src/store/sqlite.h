// Minimal RAII wrapper over the SQLite C API. SQLite errors become scission::Error here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace scission::store {

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql, const std::string& label);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Statement& Bind(int index, const std::string& value) {
    return Bind(index, std::string_view(value));
  }
  Statement& BindNull(int index);
  // Binds NULL when empty.
  Statement& Bind(int index, std::optional<double> value);

  bool Step();  // true while a row is available
  void Run();   // steps to completion
  void Reset();

  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string label_;
};

enum class OpenFlags {
  kReadWriteCreate,
  kReadOnly,
  // Read-only without the WAL index: for a database in a directory nobody can write, where the
  // -shm file cannot be created and, for the same reason, no writer can exist.
  kReadOnlyImmutable,
};

class Connection {
 public:
  Connection(const std::string& path, OpenFlags flags);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Exec(std::string_view sql);
  Statement Prepare(std::string_view sql) { return Statement(db_, sql, path_); }
  int64_t LastInsertId() const;
  const std::string& path() const { return path_; }
  bool read_only() const { return flags_ != OpenFlags::kReadWriteCreate; }
  // How long a statement waits for another connection's lock before failing (ms).
  void set_busy_timeout_ms(int ms);
  // BEGIN IMMEDIATE; false (and nothing begun) when another connection held the write lock for
  // the whole busy timeout.
  bool TryBeginImmediate();
  sqlite3* raw() { return db_; }

 private:
  int ExecCode(std::string_view sql, std::string* error);  // SQLite's result code

  sqlite3* db_ = nullptr;
  std::string path_;
  OpenFlags flags_;
};

enum class WhenLocked { kThrow, kGiveUp };

// BEGIN IMMEDIATE on construction, ROLLBACK on destruction unless Commit() was called. With
// WhenLocked::kGiveUp a database locked for the whole busy timeout leaves active() false instead
// of throwing.
class Transaction {
 public:
  explicit Transaction(Connection& connection, WhenLocked when_locked = WhenLocked::kThrow);
  ~Transaction();
  bool active() const { return !done_; }
  void Commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

}  // namespace scission::store
