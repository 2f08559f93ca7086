#include "auth/password.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "auth/sodium.hpp"
#include "common/text.hpp"
#include "common/utf8.hpp"

namespace vmp3::auth {
namespace {

static_assert(PasswordHashParams{}.ops_limit == crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE);
static_assert(PasswordHashParams{}.mem_limit == crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE);
static_assert(PasswordHashParams::Minimum().ops_limit == crypto_pwhash_argon2id_OPSLIMIT_MIN);
static_assert(PasswordHashParams::Minimum().mem_limit == crypto_pwhash_argon2id_MEMLIMIT_MIN);

constexpr std::string_view kArgon2idPrefix = crypto_pwhash_argon2id_STRPREFIX;

// Unicode White_Space and control characters (Cc): C0, space, DEL, C1 (NEL among them), no-break
// space, the other spaces, and the line and paragraph separators.
bool IsSpaceOrControl(uint32_t cp) {
  if (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0)) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  return cp == 0x1680 || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

tl::unexpected<Error> Invalid(std::string message) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(message));
}

// libsodium wants the stored hash NUL-terminated; anything that cannot be one is not a hash.
bool CopyHashString(std::string_view stored_hash, char (&out)[crypto_pwhash_STRBYTES]) {
  if (stored_hash.empty() || stored_hash.size() >= crypto_pwhash_STRBYTES) return false;
  if (stored_hash.find('\0') != std::string_view::npos) return false;
  std::memcpy(out, stored_hash.data(), stored_hash.size());
  out[stored_hash.size()] = '\0';
  return true;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, const PasswordHashParams& params) {
  if (!SodiumReady()) return MakeError(ErrorCode::kInternal, "libsodium failed to initialise");
  if (password.size() > kMaxPasswordBytes) {
    return Invalid(fmt::format("password must be at most {} bytes long", kMaxPasswordBytes));
  }
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), params.ops_limit,
                            params.mem_limit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    // The only runtime failure is being unable to allocate mem_limit bytes.
    return MakeError(ErrorCode::kUnavailable,
                     "not enough memory to hash the password; try again later");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view stored_hash, std::string_view password) {
  if (!SodiumReady()) return false;
  // Refusing over-long input early leaks nothing (the attacker knows the length it sent) and
  // bounds the work one attempt can cause.
  if (password.size() > kMaxPasswordBytes) return false;
  char hash[crypto_pwhash_STRBYTES];
  if (!CopyHashString(stored_hash, hash)) return false;
  // libsodium recomputes the full Argon2 hash and compares it with a constant-time comparison,
  // so the time taken does not reveal how close a guess was.
  return crypto_pwhash_str_verify(hash, password.data(), password.size()) == 0;
}

bool PasswordNeedsRehash(std::string_view stored_hash, const PasswordHashParams& params) {
  if (!SodiumReady()) return true;
  // crypto_pwhash_str_needs_rehash only compares costs within the hash's own algorithm, so an
  // argon2i hash with matching costs would pass; require the Argon2id prefix ourselves.
  if (!stored_hash.starts_with(kArgon2idPrefix)) return true;
  char hash[crypto_pwhash_STRBYTES];
  if (!CopyHashString(stored_hash, hash)) return true;
  return crypto_pwhash_str_needs_rehash(hash, params.ops_limit, params.mem_limit) != 0;
}

Status CheckPasswordPolicy(std::string_view password, std::string_view username) {
  // Limits count bytes: a multi-byte character counts for several, which only errs on the
  // side of longer passwords.
  if (password.size() < kMinPasswordBytes) {
    return Invalid(fmt::format("password must be at least {} characters long", kMinPasswordBytes));
  }
  if (password.size() > kMaxPasswordBytes) {
    return Invalid(fmt::format("password must be at most {} bytes long", kMaxPasswordBytes));
  }
  if (!username.empty() && EqualsIgnoringAsciiCase(password, username)) {
    return Invalid("password must not be the same as the username");
  }
  if (std::all_of(password.begin(), password.end(), [&](char c) { return c == password[0]; })) {
    return Invalid("password must not be one character repeated");
  }
  return {};
}

Status CheckUsername(std::string_view username) {
  if (username.size() < 3 || username.size() > 64) {
    return Invalid("username must be 3 to 64 characters long");
  }
  for (char c : username) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '_' && c != '-') {
      return Invalid("username may contain only letters, digits, '.', '_' and '-'");
    }
  }
  if (!IsAsciiAlnum(username.front())) {
    return Invalid("username must start with a letter or a digit");
  }
  return {};
}

Status CheckEmail(std::string_view email) {
  if (email.empty()) return Invalid("email address is required");
  if (email.size() > 254) return Invalid("email address must be at most 254 characters long");
  for (size_t i = 0; i < email.size();) {
    // Whitespace and control characters (CR/LF above all, and the Unicode ones such as NEL) have
    // no place in an address we may later put into a mail header.
    const std::optional<uint32_t> cp = NextCodePoint(email, i);
    if (!cp) return Invalid("email address must be valid UTF-8");
    if (IsSpaceOrControl(*cp)) return Invalid("email address must not contain spaces");
  }
  size_t at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) {
    return Invalid("email address must contain exactly one '@'");
  }
  if (at == 0 || at + 1 == email.size()) {
    return Invalid("email address needs a name before the '@' and a domain after it");
  }
  return {};
}

}  // namespace vmp3::auth
