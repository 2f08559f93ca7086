// An independent reading of a mail, for the e-mail tests: Python's email package (the standard
// library's RFC 5322 / MIME / RFC 2047 implementation) parses the bytes and the test compares
// what it decoded with what went in.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "support/fixtures.hpp"
#include "support/process.hpp"

namespace vmp3::test {

// Prints {"headers": [[name, decoded value], ...], "defects": [...], "from_name", "from_addr",
// "to_name", "to_addr", "parts": [{"type", "charset", "body"}, ...]}; bodies with CRLF as "\n".
inline constexpr std::string_view kPythonMailDecoder = R"PY(
import email, email.policy, json, sys
raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
out = {"headers": [[k, str(v)] for k, v in msg.items()], "defects": [repr(d) for d in msg.defects]}
for k, v in msg.items():
    out["defects"] += ["%s: %r" % (k, d) for d in getattr(v, "defects", ())]
for role in ("from", "to"):
    address = msg[role].addresses[0]
    out[role + "_name"], out[role + "_addr"] = address.display_name, address.addr_spec
parts = list(msg.iter_parts()) if msg.is_multipart() else [msg]
out["parts"] = []
for part in parts:
    out["defects"] += [repr(d) for d in part.defects]
    out["parts"].append({"type": part.get_content_type(), "charset": part.get_content_charset(),
                         "body": part.get_content().replace("\r\n", "\n")})
print(json.dumps(out))
)PY";

// Runs the decoder on `raw`; fails the calling test (and returns null) when Python fails.
inline nlohmann::json DecodeMailWithPython(std::string_view raw) {
  const std::filesystem::path dir = TempDir();
  const std::filesystem::path file = dir / "mail.eml";
  {
    std::ofstream out(file, std::ios::binary);
    out.write(raw.data(), static_cast<std::streamsize>(raw.size()));
  }
  const std::filesystem::path script = dir / "decode_mail.py";
  {
    std::ofstream out(script);
    out << kPythonMailDecoder;
  }
  // Debian's interpreter starts in a sixth of the time of a pyenv shim first on PATH.
  const std::string python =
      std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  ProcessResult r = RunProcess({python, script.string(), file.string()});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "python3 could not read the mail: " << r.err << "\n" << raw;
    return nullptr;
  }
  return nlohmann::json::parse(r.out);
}

// The decoded values of every header called `name` (case-insensitive), in order.
inline std::vector<std::string> DecodedHeaders(const nlohmann::json& decoded,
                                               std::string_view name) {
  std::vector<std::string> values;
  for (const auto& header : decoded["headers"]) {
    const std::string key = header[0].get<std::string>();
    if (key.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < key.size(); ++i)
      same = same && std::tolower(static_cast<unsigned char>(key[i])) ==
                         std::tolower(static_cast<unsigned char>(name[i]));
    if (same) values.push_back(header[1].get<std::string>());
  }
  return values;
}

}  // namespace vmp3::test
