#include "support/faulty_backends.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <thread>
#include <utility>

namespace vmp3::test {

// ------------------------------------------------------------------------------------ Gate

void Gate::Open() {
  {
    std::lock_guard lock(mu_);
    open_ = true;
  }
  changed_.notify_all();
}

bool Gate::is_open() const {
  std::lock_guard lock(mu_);
  return open_;
}

int Gate::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

bool Gate::WaitForWaiting(int n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return waiting_ >= n; });
}

void Gate::Pass() {
  std::unique_lock lock(mu_);
  ++waiting_;
  changed_.notify_all();
  changed_.wait_for(lock, max_stall_, [&] { return open_; });
  --waiting_;
  changed_.notify_all();
}

// ------------------------------------------------------------------------------- FaultPlan

FaultPlan::FaultPlan(std::initializer_list<std::string_view> operations) {
  for (std::string_view operation : operations) operations_.emplace(operation, Operation{});
}

FaultPlan::RuleBuilder& FaultPlan::RuleBuilder::Nth(int n) {
  if (n < 1) throw std::invalid_argument("FaultPlan: Nth counts calls from 1");
  nth_ = n;
  return *this;
}

void FaultPlan::RuleBuilder::Fail(ErrorCode code) { plan_.Add(op_, nth_, Rule{.fail = code}); }

void FaultPlan::RuleBuilder::Delay(std::chrono::milliseconds delay) {
  plan_.Add(op_, nth_, Rule{.delay = delay});
}

std::shared_ptr<Gate> FaultPlan::RuleBuilder::Stall(std::chrono::milliseconds max_stall) {
  auto gate = std::make_shared<Gate>(max_stall);
  plan_.Add(op_, nth_, Rule{.gate = gate});
  return gate;
}

FaultPlan::RuleBuilder FaultPlan::On(std::string_view operation) {
  Find(operation);  // throws for an unknown one
  return RuleBuilder(*this, std::string(operation));
}

void FaultPlan::Add(const std::string& operation, int nth, Rule rule) {
  std::lock_guard lock(mu_);
  Operation& op = Find(operation);
  rule.only_call = nth > 0 ? op.calls + nth : 0;
  op.rules.push_back(std::move(rule));
}

void FaultPlan::Clear(std::string_view operation) {
  std::lock_guard lock(mu_);
  Find(operation).rules.clear();
}

void FaultPlan::ClearAll() {
  std::lock_guard lock(mu_);
  for (auto& [name, op] : operations_) op.rules.clear();
}

int FaultPlan::Calls(std::string_view operation) const {
  std::lock_guard lock(mu_);
  return static_cast<int>(Find(operation).calls);
}

int FaultPlan::Failures(std::string_view operation) const {
  std::lock_guard lock(mu_);
  return static_cast<int>(Find(operation).failures);
}

FaultPlan::Operation& FaultPlan::Find(std::string_view operation) {
  return const_cast<Operation&>(std::as_const(*this).Find(operation));
}

const FaultPlan::Operation& FaultPlan::Find(std::string_view operation) const {
  auto it = operations_.find(operation);
  if (it == operations_.end()) {
    throw std::invalid_argument(
        fmt::format("FaultPlan: no operation is named \"{}\" here", operation));
  }
  return it->second;
}

std::optional<Error> FaultPlan::Before(std::string_view operation) {
  std::chrono::milliseconds delay{0};
  std::vector<std::shared_ptr<Gate>> gates;
  std::optional<ErrorCode> fail;
  {
    std::lock_guard lock(mu_);
    Operation& op = Find(operation);
    const int64_t call = ++op.calls;
    std::erase_if(op.rules, [&](const Rule& rule) {
      if (rule.only_call != 0 && rule.only_call != call) return false;
      delay += rule.delay;
      if (rule.gate) gates.push_back(rule.gate);
      if (rule.fail && !fail) fail = rule.fail;
      return rule.only_call == call;  // a rule for one call is used up
    });
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  for (const auto& gate : gates) gate->Pass();
  if (!fail) return std::nullopt;
  {
    std::lock_guard lock(mu_);
    ++Find(operation).failures;
  }
  return Error(*fail, fmt::format("{} failed (injected fault)", operation));
}

// ------------------------------------------------------------------------ FaultyObjectStore

namespace {

class FaultyObjectReader final : public ObjectReader {
 public:
  FaultyObjectReader(std::unique_ptr<ObjectReader> inner, std::shared_ptr<FaultPlan> plan)
      : inner_(std::move(inner)), plan_(std::move(plan)) {}

  Result<size_t> Read(std::span<std::byte> out) override {
    if (auto injected = plan_->Before("Read")) return tl::unexpected(*injected);
    return inner_->Read(out);
  }
  Status Seek(uint64_t offset) override {
    if (auto injected = plan_->Before("Seek")) return tl::unexpected(*injected);
    return inner_->Seek(offset);
  }
  bool Seekable() const override { return inner_->Seekable(); }
  std::optional<uint64_t> Size() const override { return inner_->Size(); }
  std::string Describe() const override { return inner_->Describe(); }
  const ObjectInfo& Info() const override { return inner_->Info(); }
  void ReadAhead(size_t max_bytes) override { inner_->ReadAhead(max_bytes); }

 private:
  std::unique_ptr<ObjectReader> inner_;
  std::shared_ptr<FaultPlan> plan_;
};

class FaultyObjectWriter final : public ObjectWriter {
 public:
  FaultyObjectWriter(std::unique_ptr<ObjectWriter> inner, std::shared_ptr<FaultPlan> plan)
      : inner_(std::move(inner)), plan_(std::move(plan)) {}

  Status Write(std::span<const std::byte> data) override {
    if (auto injected = plan_->Before("Write")) return tl::unexpected(*injected);
    return inner_->Write(data);
  }
  uint64_t Position() const override { return inner_->Position(); }
  // A failed Commit aborts the writer, as the contract says, whatever failed it.
  Result<ObjectInfo> Commit() override {
    if (auto injected = plan_->Before("Commit")) {
      inner_->Abort();
      return tl::unexpected(*injected);
    }
    return inner_->Commit();
  }
  void Abort() override { inner_->Abort(); }

 private:
  std::unique_ptr<ObjectWriter> inner_;
  std::shared_ptr<FaultPlan> plan_;
};

}  // namespace

FaultyObjectStore::FaultyObjectStore(std::shared_ptr<ObjectStore> inner)
    : inner_(std::move(inner)),
      plan_(std::make_shared<FaultPlan>(std::initializer_list<std::string_view>{
          "Create", "Open", "Stat", "Remove", "List", "Ping", "Read", "Seek", "Write", "Commit"})) {
}

Result<std::unique_ptr<ObjectWriter>> FaultyObjectStore::Create(std::string_view key) {
  if (auto injected = plan_->Before("Create")) return tl::unexpected(*injected);
  auto writer = inner_->Create(key);
  if (!writer) return writer;
  return std::unique_ptr<ObjectWriter>(
      std::make_unique<FaultyObjectWriter>(std::move(*writer), plan_));
}

Result<std::unique_ptr<ObjectReader>> FaultyObjectStore::Open(std::string_view key) {
  if (auto injected = plan_->Before("Open")) return tl::unexpected(*injected);
  auto reader = inner_->Open(key);
  if (!reader) return reader;
  return std::unique_ptr<ObjectReader>(
      std::make_unique<FaultyObjectReader>(std::move(*reader), plan_));
}

Result<ObjectInfo> FaultyObjectStore::Stat(std::string_view key) {
  if (auto injected = plan_->Before("Stat")) return tl::unexpected(*injected);
  return inner_->Stat(key);
}

Status FaultyObjectStore::Remove(std::string_view key) {
  if (auto injected = plan_->Before("Remove")) return tl::unexpected(*injected);
  return inner_->Remove(key);
}

Result<ObjectListing> FaultyObjectStore::List(std::string_view prefix, std::string_view start_after,
                                              int limit) {
  if (auto injected = plan_->Before("List")) return tl::unexpected(*injected);
  return inner_->List(prefix, start_after, limit);
}

Status FaultyObjectStore::Ping() {
  if (auto injected = plan_->Before("Ping")) return tl::unexpected(*injected);
  return inner_->Ping();
}

std::string FaultyObjectStore::Describe() const { return "faulty " + inner_->Describe(); }

// --------------------------------------------------------------------------- FaultyJobQueue

FaultyJobQueue::FaultyJobQueue(std::shared_ptr<JobQueue> inner)
    : inner_(std::move(inner)),
      plan_({"Publish", "Take", "Ack", "Retry", "Release", "Heartbeat", "Depth", "DeadLetters",
             "Ping"}) {}

Status FaultyJobQueue::Publish(std::string_view job_id) {
  if (auto injected = plan_.Before("Publish")) return tl::unexpected(*injected);
  return inner_->Publish(job_id);
}

Result<std::optional<Delivery>> FaultyJobQueue::Take(std::chrono::milliseconds wait) {
  if (auto injected = plan_.Before("Take")) return tl::unexpected(*injected);
  return inner_->Take(wait);
}

Status FaultyJobQueue::Ack(const Delivery& delivery) {
  if (auto injected = plan_.Before("Ack")) return tl::unexpected(*injected);
  return inner_->Ack(delivery);
}

Result<bool> FaultyJobQueue::Retry(const Delivery& delivery, std::chrono::milliseconds delay) {
  if (auto injected = plan_.Before("Retry")) return tl::unexpected(*injected);
  return inner_->Retry(delivery, delay);
}

Status FaultyJobQueue::Release(const Delivery& delivery) {
  if (auto injected = plan_.Before("Release")) return tl::unexpected(*injected);
  return inner_->Release(delivery);
}

Status FaultyJobQueue::Heartbeat(const Delivery& delivery) {
  if (auto injected = plan_.Before("Heartbeat")) return tl::unexpected(*injected);
  return inner_->Heartbeat(delivery);
}

Result<uint64_t> FaultyJobQueue::Depth() {
  if (auto injected = plan_.Before("Depth")) return tl::unexpected(*injected);
  return inner_->Depth();
}

Result<std::vector<std::string>> FaultyJobQueue::DeadLetters() {
  if (auto injected = plan_.Before("DeadLetters")) return tl::unexpected(*injected);
  return inner_->DeadLetters();
}

void FaultyJobQueue::Interrupt() { inner_->Interrupt(); }

Status FaultyJobQueue::Ping() {
  if (auto injected = plan_.Before("Ping")) return tl::unexpected(*injected);
  return inner_->Ping();
}

std::string FaultyJobQueue::Describe() const { return "faulty " + inner_->Describe(); }

// ---------------------------------------------------------------------- FaultyMetadataStore

FaultyMetadataStore::FaultyMetadataStore(std::shared_ptr<MetadataStore> inner)
    : inner_(std::move(inner)),
      plan_({"CreateUser", "FindUserByName", "GetUser", "CreateJobWithin", "GetUsage", "GetJob",
             "UpdateJob", "SetProgress", "ListJobs", "DeleteJob", "ExpireJob", "ReadEvents",
             "PruneEvents", "ListExpired", "CountByStatus", "Ping"}) {}

Status FaultyMetadataStore::CreateUser(const User& user) {
  if (auto injected = plan_.Before("CreateUser")) return tl::unexpected(*injected);
  return inner_->CreateUser(user);
}

Result<User> FaultyMetadataStore::FindUserByName(std::string_view username) {
  if (auto injected = plan_.Before("FindUserByName")) return tl::unexpected(*injected);
  return inner_->FindUserByName(username);
}

Result<User> FaultyMetadataStore::GetUser(std::string_view id) {
  if (auto injected = plan_.Before("GetUser")) return tl::unexpected(*injected);
  return inner_->GetUser(id);
}

Status FaultyMetadataStore::CreateJobWithin(const Job& job, const UsageLimits& limits) {
  if (auto injected = plan_.Before("CreateJobWithin")) return tl::unexpected(*injected);
  return inner_->CreateJobWithin(job, limits);
}

Result<Usage> FaultyMetadataStore::GetUsage(std::string_view owner_id) {
  if (auto injected = plan_.Before("GetUsage")) return tl::unexpected(*injected);
  return inner_->GetUsage(owner_id);
}

Result<Job> FaultyMetadataStore::GetJob(std::string_view id) {
  if (auto injected = plan_.Before("GetJob")) return tl::unexpected(*injected);
  return inner_->GetJob(id);
}

Result<Job> FaultyMetadataStore::UpdateJob(std::string_view id,
                                           const std::function<Status(Job&)>& mutate) {
  if (auto injected = plan_.Before("UpdateJob")) return tl::unexpected(*injected);
  return inner_->UpdateJob(id, mutate);
}

Status FaultyMetadataStore::SetProgress(std::string_view id, double progress) {
  if (auto injected = plan_.Before("SetProgress")) return tl::unexpected(*injected);
  return inner_->SetProgress(id, progress);
}

Result<JobPage> FaultyMetadataStore::ListJobs(std::string_view owner_id, int limit,
                                              std::string_view cursor) {
  if (auto injected = plan_.Before("ListJobs")) return tl::unexpected(*injected);
  return inner_->ListJobs(owner_id, limit, cursor);
}

Status FaultyMetadataStore::DeleteJob(std::string_view id) {
  if (auto injected = plan_.Before("DeleteJob")) return tl::unexpected(*injected);
  return inner_->DeleteJob(id);
}

Status FaultyMetadataStore::ExpireJob(std::string_view id, int64_t now_ms) {
  if (auto injected = plan_.Before("ExpireJob")) return tl::unexpected(*injected);
  return inner_->ExpireJob(id, now_ms);
}

Result<EventPage> FaultyMetadataStore::ReadEvents(std::string_view owner_id, std::string_view after,
                                                  int limit) {
  if (auto injected = plan_.Before("ReadEvents")) return tl::unexpected(*injected);
  return inner_->ReadEvents(owner_id, after, limit);
}

Status FaultyMetadataStore::PruneEvents(int64_t before_ms) {
  if (auto injected = plan_.Before("PruneEvents")) return tl::unexpected(*injected);
  return inner_->PruneEvents(before_ms);
}

Result<std::vector<Job>> FaultyMetadataStore::ListExpired(int64_t now_ms, int limit) {
  if (auto injected = plan_.Before("ListExpired")) return tl::unexpected(*injected);
  return inner_->ListExpired(now_ms, limit);
}

Result<std::map<JobStatus, uint64_t>> FaultyMetadataStore::CountByStatus() {
  if (auto injected = plan_.Before("CountByStatus")) return tl::unexpected(*injected);
  return inner_->CountByStatus();
}

Status FaultyMetadataStore::Ping() {
  if (auto injected = plan_.Before("Ping")) return tl::unexpected(*injected);
  return inner_->Ping();
}

std::string FaultyMetadataStore::Describe() const { return "faulty " + inner_->Describe(); }

}  // namespace vmp3::test
