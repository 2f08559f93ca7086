// Background work of a role (converter threads, the janitor). Start() returns at once; Stop()
// finishes or hands back running work and joins.
#pragma once

namespace vmp3::roles {

class Worker {
 public:
  virtual ~Worker() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

}  // namespace vmp3::roles
