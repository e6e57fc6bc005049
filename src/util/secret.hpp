// Strings that hold secrets (auth token, API secret, typed code, request
// bodies carrying the code). Their memory is wiped with explicit_bzero when
// they are cleared, moved from or destroyed.
#pragma once

#include <string.h>

#include <string>
#include <string_view>
#include <utility>

namespace ptv {

inline void wipe_memory(void* p, std::size_t n) noexcept {
  if (p != nullptr && n != 0) explicit_bzero(p, n);
}

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string_view v) : value_(v) {}
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  // A move moves the string (which never allocates, so it cannot throw
  // inside noexcept: a copy could, and std::terminate in sshd is a
  // denial of service), then wipes the source: a short value was copied
  // out of its small-string buffer, and those bytes are still there.
  Secret(Secret&& other) noexcept : value_(std::move(other.value_)) {
    other.wipe();
  }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      wipe();
      value_ = std::move(other.value_);
      other.wipe();
    }
    return *this;
  }
  ~Secret() { wipe(); }

  void wipe() noexcept {
    wipe_memory(value_.data(), value_.capacity());
    value_.clear();
  }
  void reserve(std::size_t n) { value_.reserve(n); }
  // Appending never reallocates once reserve() made room; callers that build
  // secrets reserve first so that no unwiped buffer is left behind.
  void append(std::string_view s) { value_.append(s); }
  void push_back(char c) { value_.push_back(c); }
  // n zero bytes to read into (data()), after reserve(n + 1): no copy left
  // behind by a reallocation.
  void resize(std::size_t n) { value_.resize(n); }
  [[nodiscard]] char* data() noexcept { return value_.data(); }

  [[nodiscard]] std::string_view view() const noexcept { return value_; }
  [[nodiscard]] const char* c_str() const noexcept { return value_.c_str(); }
  [[nodiscard]] std::size_t size() const noexcept { return value_.size(); }
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }

 private:
  std::string value_;
};

}  // namespace ptv
