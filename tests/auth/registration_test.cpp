#include "auth/registration.hpp"

#include <gtest/gtest.h>

namespace vmp3::auth {
namespace {

TEST(RegistrationTest, ReadsTheThreeFields) {
  auto r = ParseRegistration(
      R"({"username":"ann.k","password":"correct horse","email":"ann@example.com","x":[1]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->username, "ann.k");
  EXPECT_EQ(r->password, "correct horse");
  EXPECT_EQ(r->email, "ann@example.com");

  auto no_email = ParseRegistration(R"({"username":"bob","password":"s3cr3t-pw"})");
  ASSERT_TRUE(no_email) << no_email.error().message;
  EXPECT_EQ(no_email->email, "");
  // An email that is not a string is ignored, as the route always did.
  auto odd_email = ParseRegistration(R"({"username":"bob","password":"s3cr3t-pw","email":7})");
  ASSERT_TRUE(odd_email) << odd_email.error().message;
  EXPECT_EQ(odd_email->email, "");
}

TEST(RegistrationTest, RejectsBodiesWithoutTheFields) {
  for (const char* body : {"", "not json", "[]", "null", R"({"username":"bob"})",
                           R"({"username":"bob","password":12345678})",
                           R"({"username":["bob"],"password":"s3cr3t-pw"})",
                           "{\"username\":\"bob\",\"password\":\"s3cr3t-\xff\"}"}) {
    auto r = ParseRegistration(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message, R"(send JSON {"username": "...", "password": "..."})");
  }
}

TEST(RegistrationTest, AppliesThePolicies) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (const Case& c :
       {Case{R"({"username":"b","password":"s3cr3t-pw"})", "username must be 3 to 64"},
        Case{R"({"username":"bob","password":"short"})", "at least 8"},
        Case{R"({"username":"Robert","password":"robert"})", "at least 8"},
        Case{R"({"username":"Roberta1","password":"rOBERTA1"})", "same as the username"},
        Case{R"({"username":"bob","password":"s3cr3t-pw","email":"no-at-sign"})", "'@'"},
        Case{R"({"username":"bob","password":"s3cr3t-pw","email":"a b@c"})", "spaces"}}) {
    auto r = ParseRegistration(c.body);
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos)
        << c.body << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace vmp3::auth
