#include "queue/sqlite_job_queue.hpp"

#include <fmt/format.h>

#include <charconv>
#include <random>

namespace vmp3 {
namespace {

// Message states, stored as integers.
constexpr int kReady = 0;
constexpr int kLeased = 1;
constexpr int kDead = 2;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- FIFO order among messages visible at the same time
  job_id TEXT NOT NULL,
  state INTEGER NOT NULL,                 -- 0 ready, 1 leased, 2 dead
  attempt INTEGER NOT NULL,               -- deliveries so far
  visible_at INTEGER NOT NULL,            -- unix ms: ready from / lease runs out at
  receipt TEXT                            -- random token of the current lease
);
CREATE INDEX IF NOT EXISTS messages_takeable ON messages(visible_at, seq) WHERE state < 2;
)sql";

// Schema steps: the SQL that moves version i to i + 1 (sqlite::Migrate).
const std::string_view kSchemaSteps[] = {kSchema};

Status Migrate(sqlite::Connection& db) { return sqlite::Migrate(db, "queue", kSchemaSteps); }

std::string RandomToken() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

struct SqliteReceipt {
  int64_t seq = 0;
  std::string_view token;
};

Result<SqliteReceipt> ParseSqliteReceipt(const Delivery& delivery) {
  std::string_view text = delivery.receipt;
  size_t dot = text.find('.');
  SqliteReceipt receipt;
  if (dot != std::string_view::npos) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + dot, receipt.seq);
    receipt.token = text.substr(dot + 1);
    if (ec == std::errc() && end == text.data() + dot && !receipt.token.empty()) return receipt;
  }
  return MalformedReceipt(delivery);
}

}  // namespace

Result<std::unique_ptr<SqliteJobQueue>> SqliteJobQueue::Open(const std::filesystem::path& path,
                                                             const JobQueueOptions& options,
                                                             Tuning tuning) {
  if (auto valid = ValidateJobQueueOptions(options); !valid) return tl::unexpected(valid.error());
  if (tuning.poll_interval.count() <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, "the queue poll interval must be positive");
  }
  if (!tuning.now_ms) {
    tuning.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return tl::unexpected(ErrnoError(ec, "cannot create the directory of", path.string()));
  auto db = sqlite::Connection::Open(path, sqlite::OpenOptions{.synchronous_full = true});
  if (!db) return tl::unexpected(db.error());
  if (auto migrated = Migrate(**db); !migrated) return tl::unexpected(migrated.error());
  return std::unique_ptr<SqliteJobQueue>(
      new SqliteJobQueue(std::move(*db), options, std::move(tuning)));
}

Status SqliteJobQueue::Publish(std::string_view job_id) {
  if (Status valid = CheckQueuedJobId(job_id); !valid) return valid;
  {
    std::lock_guard lock(db_mu_);
    auto stmt = db_->Prepare(
        "INSERT INTO messages (job_id, state, attempt, visible_at) VALUES (?1, ?2, 0, ?3)");
    if (!stmt) return tl::unexpected(stmt.error());
    if (auto ran = stmt->Bind(job_id, kReady, tuning_.now_ms()).Run(); !ran) return ran;
  }
  Signal();
  return {};
}

Result<std::optional<Delivery>> SqliteJobQueue::TryTake(int64_t* next_visible_ms) {
  std::lock_guard lock(db_mu_);
  int64_t now = tuning_.now_ms();
  auto tx = sqlite::Transaction::Begin(*db_);
  if (!tx) return tl::unexpected(tx.error());
  {
    // A lease that ran out on the last attempt: the job has crashed or hung its taker each time.
    auto dead = db_->Prepare(
        "UPDATE messages SET state = ?1, receipt = NULL "
        "WHERE state = ?2 AND visible_at <= ?3 AND attempt >= ?4");
    if (!dead) return tl::unexpected(dead.error());
    if (auto ran = dead->Bind(kDead, kLeased, now, options_.max_attempts).Run(); !ran) {
      return tl::unexpected(ran.error());
    }
  }
  std::optional<Delivery> delivery;
  {
    std::string token = RandomToken();
    auto take = db_->Prepare(
        "UPDATE messages SET state = ?1, attempt = attempt + 1, visible_at = ?2, receipt = ?3 "
        "WHERE seq = (SELECT seq FROM messages WHERE state < 2 AND visible_at <= ?4 "
        "             ORDER BY visible_at, seq LIMIT 1) "
        "RETURNING seq, job_id, attempt");
    if (!take) return tl::unexpected(take.error());
    auto row = take->Bind(kLeased, now + options_.lease.count(), token, now).Step();
    if (!row) return tl::unexpected(row.error());
    if (*row) {
      delivery = Delivery{.job_id = take->Text(1),
                          .attempt = static_cast<int>(take->Int(2)),
                          .receipt = fmt::format("{}.{}", take->Int(0), token)};
    }
  }
  if (!delivery) {
    auto next = db_->Prepare("SELECT MIN(visible_at) FROM messages WHERE state < 2");
    if (!next) return tl::unexpected(next.error());
    auto row = next->Step();
    if (!row) return tl::unexpected(row.error());
    *next_visible_ms = (*row && !next->IsNull(0)) ? next->Int(0) : -1;
  }
  if (auto committed = tx->Commit(); !committed) return tl::unexpected(committed.error());
  return delivery;
}

Result<std::optional<Delivery>> SqliteJobQueue::Take(std::chrono::milliseconds wait) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + wait;
  for (;;) {
    uint64_t seen;
    {
      std::lock_guard lock(wait_mu_);
      if (interrupted_) return std::nullopt;
      seen = signal_;
    }
    int64_t next_visible_ms = -1;
    auto taken = TryTake(&next_visible_ms);
    if (!taken || taken->has_value()) return taken;

    Clock::time_point now = Clock::now();
    if (now >= deadline) return std::nullopt;
    Clock::duration sleep = std::min<Clock::duration>(deadline - now, tuning_.poll_interval);
    if (next_visible_ms >= 0) {
      auto due =
          std::chrono::milliseconds(std::max<int64_t>(0, next_visible_ms - tuning_.now_ms() + 1));
      sleep = std::min<Clock::duration>(sleep, due);
    }
    std::unique_lock lock(wait_mu_);
    wait_cv_.wait_for(lock, sleep, [&] { return interrupted_ || signal_ != seen; });
  }
}

Status SqliteJobQueue::Ack(const Delivery& delivery) {
  auto receipt = ParseSqliteReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  std::lock_guard lock(db_mu_);
  auto stmt = db_->Prepare("DELETE FROM messages WHERE seq = ?1 AND state = ?2 AND receipt = ?3");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto ran = stmt->Bind(receipt->seq, kLeased, receipt->token).Run(); !ran) return ran;
  if (db_->Changes() == 0) return LeaseLost(delivery.job_id);
  return {};
}

Result<bool> SqliteJobQueue::Retry(const Delivery& delivery, std::chrono::milliseconds delay) {
  auto receipt = ParseSqliteReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  bool dead = false;
  {
    std::lock_guard lock(db_mu_);
    // The attempt count comes from the row, not from the caller's copy of the delivery.
    auto stmt = db_->Prepare(
        "UPDATE messages SET state = CASE WHEN attempt >= ?1 THEN ?2 ELSE ?3 END, "
        "visible_at = ?4, receipt = NULL "
        "WHERE seq = ?5 AND state = ?6 AND receipt = ?7 RETURNING state");
    if (!stmt) return tl::unexpected(stmt.error());
    auto row = stmt->Bind(options_.max_attempts, kDead, kReady,
                          tuning_.now_ms() + std::max<int64_t>(0, delay.count()), receipt->seq,
                          kLeased, receipt->token)
                   .Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return LeaseLost(delivery.job_id);
    dead = stmt->Int(0) == kDead;
    // Finish the statement so its autocommit transaction ends here, not at the next borrow.
    if (auto finished = stmt->Run(); !finished) return tl::unexpected(finished.error());
  }
  if (!dead) Signal();
  return dead;
}

Status SqliteJobQueue::Release(const Delivery& delivery) {
  auto receipt = ParseSqliteReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  {
    std::lock_guard lock(db_mu_);
    auto stmt = db_->Prepare(
        "UPDATE messages SET state = ?1, attempt = attempt - 1, visible_at = ?2, receipt = NULL "
        "WHERE seq = ?3 AND state = ?4 AND receipt = ?5");
    if (!stmt) return tl::unexpected(stmt.error());
    auto ran = stmt->Bind(kReady, tuning_.now_ms(), receipt->seq, kLeased, receipt->token).Run();
    if (!ran) return ran;
    if (db_->Changes() == 0) return LeaseLost(delivery.job_id);
  }
  Signal();
  return {};
}

Status SqliteJobQueue::Heartbeat(const Delivery& delivery) {
  auto receipt = ParseSqliteReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  std::lock_guard lock(db_mu_);
  auto stmt = db_->Prepare(
      "UPDATE messages SET visible_at = ?1 WHERE seq = ?2 AND state = ?3 AND receipt = ?4");
  if (!stmt) return tl::unexpected(stmt.error());
  auto ran =
      stmt->Bind(tuning_.now_ms() + options_.lease.count(), receipt->seq, kLeased, receipt->token)
          .Run();
  if (!ran) return ran;
  if (db_->Changes() == 0) return LeaseLost(delivery.job_id);
  return {};
}

Result<uint64_t> SqliteJobQueue::Depth() {
  std::lock_guard lock(db_mu_);
  auto stmt = db_->Prepare("SELECT COUNT(*) FROM messages WHERE state < 2");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return tl::unexpected(row.error());
  return static_cast<uint64_t>(stmt->Int(0));
}

Result<std::vector<std::string>> SqliteJobQueue::DeadLetters() {
  std::lock_guard lock(db_mu_);
  auto stmt = db_->Prepare("SELECT job_id FROM messages WHERE state = ?1 ORDER BY seq");
  if (!stmt) return tl::unexpected(stmt.error());
  stmt->Bind(kDead);
  std::vector<std::string> ids;
  for (;;) {
    auto row = stmt->Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return ids;
    ids.push_back(stmt->Text(0));
  }
}

void SqliteJobQueue::Interrupt() {
  {
    std::lock_guard lock(wait_mu_);
    interrupted_ = true;
  }
  wait_cv_.notify_all();
}

Status SqliteJobQueue::Ping() {
  std::lock_guard lock(db_mu_);
  auto stmt = db_->Prepare("SELECT 1 FROM messages LIMIT 1");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return tl::unexpected(row.error());
  return {};
}

std::string SqliteJobQueue::Describe() const { return "sqlite://" + db_->path().string(); }

void SqliteJobQueue::Signal() {
  {
    std::lock_guard lock(wait_mu_);
    ++signal_;
  }
  wait_cv_.notify_all();
}

}  // namespace vmp3
