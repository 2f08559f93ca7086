#include "http/problem.hpp"

#include <nlohmann/json.hpp>

namespace vmp3::http {

int64_t RetryAfterFor(const Error& error) {
  if (error.retry_after_seconds > 0) return error.retry_after_seconds;
  return IsTransient(error.code) ? 5 : 0;
}

std::string ProblemJson(const Error& error, int status, std::string_view instance) {
  const std::string_view code = ErrorCodeName(error.code);
  nlohmann::ordered_json body;
  body["type"] = "/problems/" + std::string(code);
  body["title"] = ProblemTitle(error.code);
  body["status"] = status;
  body["detail"] = error.message;
  if (!instance.empty()) body["instance"] = instance;
  body["code"] = code;
  // replace: a message quoting an uploaded file name may hold bytes that are not UTF-8, and
  // dump() would otherwise throw.
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace vmp3::http
