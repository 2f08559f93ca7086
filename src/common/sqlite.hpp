// Thin RAII helpers over the SQLite C API, shared by the embedded job queue and metadata store.
// Deliberately small: open a connection with the settings vmp3 relies on, prepare (cached)
// statements, bind, step, read columns, and run IMMEDIATE transactions.
//
// Threading: a Connection and its Statements are used by one thread at a time (connections are
// opened with SQLITE_OPEN_NOMUTEX); share them between threads through a Pool or a mutex.
//
// Errors: SQLITE_BUSY/LOCKED (still locked after the busy timeout) → kUnavailable; constraint
// violations → kAlreadyExists; SQL errors and API misuse (bugs) → kInternal; everything else
// (I/O, full disk, corruption, cannot open) → kIo.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace vmp3::sqlite {

struct OpenOptions {
  // WAL mode is always on. With synchronous=NORMAL a commit survives a crash of the process but
  // the last commits may be lost on power failure (the database stays consistent); FULL makes
  // every commit durable when it returns, at the cost of an fsync per commit.
  bool synchronous_full = false;
  // How long a statement waits for another connection's lock before failing with kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
};

class Connection;

// A prepared statement borrowed from a Connection's cache. Destroying it resets the statement
// (releasing any read snapshot it holds) and clears its bindings. Must not outlive its Connection.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Binds parameters ?1..?n in order: integers, floating point, strings (copied), nullptr (NULL).
  template <typename... Args>
  Statement& Bind(const Args&... args) {
    int index = 0;
    (BindOne(++index, args), ...);
    return *this;
  }

  // Runs one step. True when a row is available, false when the statement has finished.
  Result<bool> Step();
  // Steps until the statement finishes, discarding rows.
  Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Connection;
  Statement(sqlite3_stmt* stmt, Connection* connection) : stmt_(stmt), connection_(connection) {}

  template <typename T>
  void BindOne(int index, const T& value) {
    if constexpr (std::is_same_v<T, std::nullptr_t>) {
      BindNull(index);
    } else if constexpr (std::is_same_v<T, bool>) {
      BindInt(index, value ? 1 : 0);
    } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      BindInt(index, static_cast<int64_t>(value));
    } else if constexpr (std::is_floating_point_v<T>) {
      BindDouble(index, static_cast<double>(value));
    } else {
      BindText(index, std::string_view(value));
    }
  }
  void BindNull(int index);
  void BindInt(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindText(int index, std::string_view value);

  sqlite3_stmt* stmt_;
  Connection* connection_;
  int bind_error_ = 0;  // the first failed bind, reported by Step()
};

// One SQLite connection in WAL mode with a busy timeout and a per-connection statement cache.
class Connection {
 public:
  // Opens (creating when missing) the database file; the parent directory must exist.
  static Result<std::unique_ptr<Connection>> Open(const std::filesystem::path& path,
                                                  const OpenOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements that return no rows (schema, PRAGMA, BEGIN/COMMIT).
  Status Exec(const std::string& sql);
  // Returns the cached statement for sql, preparing it on first use. The same sql must not be in
  // use twice at once on one connection (the second borrow would reset the first).
  Result<Statement> Prepare(std::string_view sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  // An Error for a failed SQLite call with result code rc, prefixed by `what`.
  Error MakeSqliteError(int rc, std::string_view what) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  Connection(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::filesystem::path path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

// BEGIN IMMEDIATE (takes the write lock up front, so read-modify-write sequences cannot fail
// half-way on a lock upgrade). Rolls back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> Begin(Connection& connection);
  Transaction(Transaction&& other) noexcept : connection_(other.connection_) {
    other.connection_ = nullptr;
  }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Connection* connection) : connection_(connection) {}
  Connection* connection_;
};

// A fixed set of connections to one database, handed out one thread at a time. Thread-safe.
class Pool {
 public:
  explicit Pool(std::vector<std::unique_ptr<Connection>> connections);

  // Returns its connection to the pool on destruction. Must not outlive the Pool.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), connection_(other.connection_) {
      other.connection_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_; }

   private:
    friend class Pool;
    Lease(Pool* pool, Connection* connection) : pool_(pool), connection_(connection) {}
    Pool* pool_;
    Connection* connection_;
  };

  // Blocks until a connection is free.
  Lease Acquire();

 private:
  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Connection*> free_;
};

// Reads PRAGMA user_version.
Result<int> UserVersion(Connection& connection);

// Brings the schema up to date in one transaction: `steps[i]` is the SQL that moves version i to
// i + 1, and PRAGMA user_version records how far a database got. A database newer than
// steps.size() is refused (kInternal) rather than misread; `what` names it in that message.
Status Migrate(Connection& connection, std::string_view what,
               std::span<const std::string_view> steps);

}  // namespace vmp3::sqlite
