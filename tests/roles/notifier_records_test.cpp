// The notifier's pure parts: the retry schedule, delivery ids, payloads, and the records' JSON.
#include "roles/notifier_records.hpp"

#include <gtest/gtest.h>

#include <set>

namespace vmp3::roles {
namespace {

TEST(NotifierRetryTest, FollowsTheScheduleWithJitterThenGivesUp) {
  // The delay before attempt k + 1 after k attempts, in seconds.
  const int64_t schedule[] = {5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400};
  for (int made = 1; made <= 9; ++made) {
    const int64_t nominal = schedule[made - 1] * 1000;
    for (int i = 0; i < 50; ++i) {
      auto at = NextAttemptAt(made, 1'000'000, std::nullopt, 1.0);
      ASSERT_TRUE(at) << made;
      const int64_t delay = *at - 1'000'000;
      EXPECT_GE(delay, nominal * 9 / 10) << "attempt " << made + 1;
      EXPECT_LE(delay, nominal * 11 / 10) << "attempt " << made + 1;
    }
  }
  EXPECT_FALSE(NextAttemptAt(10, 0, std::nullopt, 1.0)) << "ten attempts in all";
  EXPECT_FALSE(NextAttemptAt(0, 0, std::nullopt, 1.0));
}

TEST(NotifierRetryTest, JitterSpreadsRetriesAndRetryAfterWinsWhenLonger) {
  std::set<int64_t> seen;
  for (int i = 0; i < 50; ++i) seen.insert(*NextAttemptAt(2, 0, std::nullopt, 1.0));
  EXPECT_GT(seen.size(), 10u) << "receivers that failed together do not retry together";
  EXPECT_EQ(*NextAttemptAt(1, 0, int64_t{60'000}, 1.0), 60'000) << "Retry-After: 60";
  EXPECT_GE(*NextAttemptAt(3, 0, int64_t{1'000}, 1.0), 1'800'000 * 9 / 10)
      << "a shorter Retry-After does not hasten the schedule";
  EXPECT_LE(*NextAttemptAt(2, 0, std::nullopt, 0.001), 331) << "the test scale";
}

TEST(NotifierRetryTest, RetriesOnlyWhatMaySucceedLater) {
  for (int status : {0, 429, 500, 502, 503, 504}) EXPECT_TRUE(IsRetryable(status)) << status;
  for (int status : {200, 301, 302, 400, 401, 404, 410, 413}) EXPECT_FALSE(IsRetryable(status));
}

TEST(NotifierDeliveryTest, IdsAreStablePerEventAndDestination) {
  const std::string id = DeliveryId("evt1", Channel::kWebhook, "endpoint1");
  EXPECT_EQ(id, DeliveryId("evt1", Channel::kWebhook, "endpoint1"));
  EXPECT_EQ(id.size(), 32u);
  EXPECT_NE(id, DeliveryId("evt2", Channel::kWebhook, "endpoint1"));
  EXPECT_NE(id, DeliveryId("evt1", Channel::kPush, "endpoint1"));
  EXPECT_NE(id, DeliveryId("evt1", Channel::kWebhook, "endpoint2"));
  // No ambiguity from where one part ends and the next begins.
  EXPECT_NE(DeliveryId("a", Channel::kWebhook, "bc"), DeliveryId("ab", Channel::kWebhook, "c"));
}

TEST(NotifierDeliveryTest, RecordsRoundTripThroughJson) {
  Delivery d{.event_id = "e",
             .event_type = "job.done",
             .event_at = 12,
             .channel = Channel::kEmail,
             .target = "a@example.org",
             .url = "",
             .payload = "{}",
             .state = "failed",
             .attempts = {{1, 0, 10, "timeout"}, {2, 503, 20, "busy"}}};
  Delivery back = nlohmann::json(d).get<Delivery>();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(d));
  WebhookEndpoint e{.url = "https://x.example/h",
                    .events = {"job.done"},
                    .enabled = false,
                    .disabled_reason = "gone",
                    .secrets = {{"whsec_new", 0}, {"whsec_old", 500}}};
  EXPECT_EQ(nlohmann::json(nlohmann::json(e).get<WebhookEndpoint>()), nlohmann::json(e));
  EXPECT_EQ(e.SigningSecrets(499), (std::vector<std::string>{"whsec_new", "whsec_old"}));
  EXPECT_EQ(e.SigningSecrets(500), (std::vector<std::string>{"whsec_new"})) << "grace over";
  EXPECT_TRUE(e.Wants("job.done"));
  EXPECT_FALSE(e.Wants("job.failed"));
  EXPECT_TRUE(e.Wants("webhook.test")) << "asked for explicitly";
}

TEST(NotifierDeliveryTest, TheDeliveryLogShowsNoStatusForAttemptsWithoutAnswer) {
  Record r{.id = "d", .owner_id = "u", .created_at = 1500, .due_at = 0};
  Delivery d{
      .attempts = {{1000, 0, 10000, "timeout"}, {2000, -1, 0, "refused"}, {3000, 200, 5, ""}}};
  nlohmann::json j = DeliveryJson(r, d);
  EXPECT_TRUE(j["attempts"][0]["status_code"].is_null());
  EXPECT_TRUE(j["attempts"][1]["status_code"].is_null());
  EXPECT_EQ(j["attempts"][2]["status_code"], 200);
  EXPECT_TRUE(j["attempts"][2]["error"].is_null());
  EXPECT_TRUE(j["next_attempt_at"].is_null());
}

TEST(NotifierPayloadTest, IsTheApiJobWithAbsoluteLinks) {
  Job job;
  job.id = "abc";
  job.owner_id = "u";
  job.status = JobStatus::kDone;
  job.input_name = "Café.mp4";
  job.output_key = "outputs/abc.mp3";
  job.finished_at = 1'700'000'000'123;
  auto body = nlohmann::json::parse(
      WebhookPayload("job.done", 1'700'000'000'123, job, "https://vmp3.example/"));
  EXPECT_EQ(body["type"], "job.done");
  EXPECT_EQ(body["timestamp"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(body["data"]["id"], "abc");
  EXPECT_EQ(body["data"]["links"]["self"], "https://vmp3.example/v1/jobs/abc");
  EXPECT_EQ(body["data"]["links"]["mp3"], "https://vmp3.example/v1/jobs/abc/mp3");
  EXPECT_FALSE(body["data"].contains("owner_id")) << "the API's view, not the record";
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00.000Z");
}

TEST(NotifierPayloadTest, StaysWithinTwentyKilobytes) {
  Job job;
  job.id = "abc";
  job.status = JobStatus::kFailed;
  job.input_name = std::string(30'000, 'n') + ".mp4";
  job.error_code = "corrupt_media";
  job.error_message = std::string(30'000, 'e');
  std::string payload = WebhookPayload("job.failed", 0, job, "https://vmp3.example");
  EXPECT_LE(payload.size(), kMaxWebhookPayloadBytes);
  auto body = nlohmann::json::parse(payload);
  EXPECT_TRUE(body["data"]["input"]["filename"].get<std::string>().starts_with("nnnn"));
}

TEST(NotifierPayloadTest, EventTypesAreChecked) {
  auto types = ParseEventTypes(nlohmann::json{"job.done", "job.failed", "job.done"});
  ASSERT_TRUE(types);
  EXPECT_EQ(*types, (std::vector<std::string>{"job.done", "job.failed"})) << "duplicates dropped";
  EXPECT_FALSE(ParseEventTypes(nlohmann::json{"job.exploded"}));
  EXPECT_FALSE(ParseEventTypes(nlohmann::json{"webhook.test"})) << "not a subscription";
  EXPECT_FALSE(ParseEventTypes(nlohmann::json("job.done")));
  EXPECT_FALSE(ParseEventTypes(nlohmann::json{1}));
}

}  // namespace
}  // namespace vmp3::roles
