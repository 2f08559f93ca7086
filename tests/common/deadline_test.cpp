#include "common/deadline.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace vmp3 {
namespace {

using namespace std::chrono_literals;

TEST(Deadline, NoneOutsideAScope) {
  EXPECT_FALSE(CurrentDeadline());
  EXPECT_EQ(TimeBudget(5000ms), 5000ms);
}

TEST(Deadline, BudgetIsTheNearerOfDeadlineAndTimeout) {
  ScopedDeadline scope(DeadlineClock::now() + 200ms);
  auto budget = TimeBudget(5000ms);
  EXPECT_GT(budget, 100ms);
  EXPECT_LE(budget, 200ms);
  EXPECT_EQ(TimeBudget(50ms), 50ms);
}

TEST(Deadline, APassedDeadlineLeavesNothing) {
  ScopedDeadline scope(DeadlineClock::now() - 1ms);
  EXPECT_EQ(TimeBudget(5000ms), 0ms);
}

TEST(Deadline, InnerScopesNeverExtendAndRestoreOnExit) {
  auto outer_at = DeadlineClock::now() + 100ms;
  {
    ScopedDeadline outer(outer_at);
    {
      ScopedDeadline inner(DeadlineClock::now() + 10s);
      EXPECT_EQ(*CurrentDeadline(), outer_at);
      ScopedDeadline nearer(DeadlineClock::now() + 10ms);
      EXPECT_LT(*CurrentDeadline(), outer_at);
    }
    EXPECT_EQ(*CurrentDeadline(), outer_at);
  }
  EXPECT_FALSE(CurrentDeadline());
}

TEST(Deadline, IsPerThread) {
  ScopedDeadline scope(DeadlineClock::now() + 1s);
  bool other_has_one = true;
  std::thread([&] { other_has_one = CurrentDeadline().has_value(); }).join();
  EXPECT_FALSE(other_has_one);
}

TEST(Deadline, DeadlinePassedIsUnavailableAndNamesTheBackend) {
  Error e = DeadlinePassed("Redis");
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_NE(e.message.find("Redis"), std::string::npos);
}

}  // namespace
}  // namespace vmp3
