// What an upload asks of its conversion. The upload role reads the options from form fields or
// query parameters and records them in Job::options_json; the converter reads them back from
// there. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "media/converter.hpp"

namespace vmp3::roles {

// The options as sent, untrusted bytes; absent or empty means "not asked for".
struct UploadOptions {
  std::optional<std::string> quality;  // "V0".."V9" or "0".."9"
  std::optional<std::string> bitrate;  // kbps, decimal
  // Where to POST this job's events (signed with the account's signing secret); checked against
  // the egress policy by the upload role before the job is created.
  std::optional<std::string> webhook_url;

  // The options as the engine takes them, validated like the CLI's. kInvalidArgument naming the
  // bad option.
  Result<media::ConvertOptions> ToConvertOptions() const;
  // The JSON recorded in Job::options_json, e.g. {"quality":"V2"} or {"bitrate":192}: only the
  // options given (and webhook_url, which the notifier reads). Call only once ToConvertOptions has
  // succeeded: the values are then known to be well-formed, and ConvertOptionsFromJson of the
  // result equals ToConvertOptions().
  std::string Json() const;
};

// Reads Job::options_json back for the converter. Lenient, as for records written by older
// versions: empty or unparsable JSON and members of the wrong type mean "not asked for".
// kInvalidArgument only for a quality that is not V0..V9.
Result<media::ConvertOptions> ConvertOptionsFromJson(std::string_view options_json);

}  // namespace vmp3::roles
