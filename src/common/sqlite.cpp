#include "common/sqlite.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

namespace vmp3::sqlite {
namespace {

ErrorCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return ErrorCode::kAlreadyExists;
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
      return ErrorCode::kInternal;
    default:
      return ErrorCode::kIo;
  }
}

}  // namespace

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), connection_(other.connection_), bind_error_(other.bind_error_) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

void Statement::BindInt(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

void Statement::BindDouble(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

void Statement::BindText(int index, std::string_view value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

Result<bool> Statement::Step() {
  if (bind_error_ != 0) {
    return tl::unexpected(connection_->MakeSqliteError(bind_error_, "cannot bind a parameter"));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return tl::unexpected(connection_->MakeSqliteError(rc, "query failed"));
}

Status Statement::Run() {
  for (;;) {
    auto row = Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return {};
  }
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// ---- Connection ----

Result<std::unique_ptr<Connection>> Connection::Open(const std::filesystem::path& path,
                                                     const OpenOptions& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return MakeError(ErrorCode::kIo,
                     fmt::format("cannot open database {}: {}", path.string(), message));
  }
  std::unique_ptr<Connection> connection(new Connection(db, path));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
  // journal_mode returns a row, so it goes through a statement rather than Exec.
  {
    auto stmt = connection->Prepare("PRAGMA journal_mode=WAL");
    if (!stmt) return tl::unexpected(stmt.error());
    auto row = stmt->Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row || stmt->Text(0) != "wal") {
      return MakeError(ErrorCode::kIo,
                       fmt::format("cannot switch database {} to WAL mode", path.string()));
    }
  }
  auto pragmas = connection->Exec(options.synchronous_full ? "PRAGMA synchronous=FULL"
                                                           : "PRAGMA synchronous=NORMAL");
  if (!pragmas) return tl::unexpected(pragmas.error());
  return connection;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Connection::Exec(const std::string& sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  std::string text = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return MakeError(CodeFor(rc), fmt::format("database {}: {}", path_.filename().string(), text));
}

Result<Statement> Connection::Prepare(std::string_view sql) {
  std::string key(sql);
  auto it = statements_.find(key);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return tl::unexpected(MakeSqliteError(rc, "cannot prepare a statement"));
    it = statements_.emplace(std::move(key), stmt).first;
  }
  return Statement(it->second, this);
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

Error Connection::MakeSqliteError(int rc, std::string_view what) const {
  // sqlite3_errmsg describes the most recent failure on this connection, which is rc's.
  return Error(CodeFor(rc), fmt::format("database {}: {}: {}", path_.filename().string(), what,
                                        sqlite3_errmsg(db_)));
}

// ---- Transaction ----

Result<Transaction> Transaction::Begin(Connection& connection) {
  auto begun = connection.Exec("BEGIN IMMEDIATE");
  if (!begun) return tl::unexpected(begun.error());
  return Transaction(&connection);
}

Transaction::~Transaction() {
  if (connection_ != nullptr) (void)connection_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  if (connection_ == nullptr) {
    return MakeError(ErrorCode::kInternal, "transaction already finished");
  }
  auto committed = connection_->Exec("COMMIT");
  if (!committed) return committed;  // the destructor rolls back
  connection_ = nullptr;
  return {};
}

// ---- Pool ----

Pool::Pool(std::vector<std::unique_ptr<Connection>> connections)
    : connections_(std::move(connections)) {
  for (auto& connection : connections_) free_.push_back(connection.get());
}

Pool::Lease Pool::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !free_.empty(); });
  Connection* connection = free_.back();
  free_.pop_back();
  return Lease(this, connection);
}

Pool::Lease::~Lease() {
  if (connection_ == nullptr) return;
  {
    std::lock_guard lock(pool_->mu_);
    pool_->free_.push_back(connection_);
  }
  pool_->cv_.notify_one();
}

Result<int> UserVersion(Connection& connection) {
  auto stmt = connection.Prepare("PRAGMA user_version");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return tl::unexpected(row.error());
  return *row ? static_cast<int>(stmt->Int(0)) : 0;
}

Status Migrate(Connection& connection, std::string_view what,
               std::span<const std::string_view> steps) {
  auto tx = Transaction::Begin(connection);
  if (!tx) return tl::unexpected(tx.error());
  auto version = UserVersion(connection);
  if (!version) return tl::unexpected(version.error());
  const int latest = static_cast<int>(steps.size());
  if (*version > latest) {
    return MakeError(ErrorCode::kInternal,
                     fmt::format("{} database {} has schema version {}, newer than this vmp3 "
                                 "understands ({})",
                                 what, connection.path().string(), *version, latest));
  }
  for (int step = *version; step < latest; ++step) {
    if (auto done = connection.Exec(std::string(steps[step])); !done) return done;
  }
  if (auto set = connection.Exec(fmt::format("PRAGMA user_version={}", latest)); !set) return set;
  return tx->Commit();
}

}  // namespace vmp3::sqlite
