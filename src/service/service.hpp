// `vmp3 serve`: builds the backends the selected roles need, starts the roles in dependency
// order behind one HTTP server, and stops them in reverse.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/error.hpp"
#include "service/config.hpp"

namespace vmp3::service {

class Service {
 public:
  // `now_ms` overrides the clock (tests of retention); empty: the system clock.
  static Result<std::unique_ptr<Service>> Create(const ServeConfig& config,
                                                 std::function<int64_t()> now_ms = {});
  ~Service();

  Status Start();
  uint16_t port() const;
  // Graceful: stop accepting, finish in-flight requests (bounded), hand running conversions
  // back to the queue, close backends. Idempotent.
  void Stop();

 private:
  Service();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmp3::service
