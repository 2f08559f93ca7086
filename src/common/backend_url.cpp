#include "common/backend_url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <charconv>

namespace vmp3 {

Result<BackendUrl> ParseBackendUrl(std::string_view url, std::string_view scheme,
                                   std::string_view what,
                                   const std::vector<std::string_view>& known_params) {
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("the {} URL {}", what, why));
  };
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return bad(fmt::format("is not a valid URL (expected {}://host:port/...)", scheme));
  const boost::urls::url_view& u = *parsed;
  if (u.scheme() != scheme) return bad(fmt::format("must start with {}://", scheme));
  // Before any look at the query: Boost.URL 1.81 reads out of bounds iterating the params of an
  // empty query followed by a fragment ("?#", boostorg/url#864).
  if (u.has_fragment()) return bad("must not have a fragment");

  // Boost.URL 1.81 reads "host:12ab/" as port 12 and path "ab/": after an authority the path
  // must start with '/', else the port had more than digits.
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/')
    return bad("has a bad port (expected 1 to 65535)");

  BackendUrl out;
  out.host = u.host_address();
  if (u.has_port()) {
    std::string_view text = u.port();
    int port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535)
      return bad("has a bad port (expected 1 to 65535)");
    out.port = port;
  }
  if (u.has_userinfo()) {
    out.user = u.user();
    if (u.has_password()) out.password = u.password();
  }
  out.path = u.path();
  if (!out.path.empty() && out.path.front() == '/') out.path.erase(0, 1);
  // '+' stays '+' (these are not HTML forms); "?" and a trailing "&" add nothing.
  for (auto param : u.params(boost::urls::encoding_opts(false, false, false))) {
    if (param.key.empty() && !param.has_value) continue;
    if (std::find(known_params.begin(), known_params.end(), param.key) == known_params.end()) {
      return bad(fmt::format("has an unknown parameter '{}' (known: {})", param.key.substr(0, 32),
                             fmt::join(known_params, ", ")));
    }
    out.params.emplace_back(param.key, param.value);
  }
  return out;
}

}  // namespace vmp3
