// The "gecos" phone source: one comma-separated field of the account's
// GECOS string (which users may edit with chfn unless CHFN_RESTRICT
// forbids it: opt-in).
#pragma once

#include <string>

#include "phone/phone.hpp"
#include "phone/source.hpp"

namespace ptv {

class GecosSource final : public NumberSource {
 public:
  // The account's GECOS string, already read with the account.
  GecosSource(std::string gecos, int field)
      : gecos_(std::move(gecos)), field_(field) {}
  [[nodiscard]] std::string_view name() const override { return "gecos"; }
  SourceValues values(const std::string&) override {
    std::string value = gecos_field(gecos_, field_);
    if (value.empty()) return std::vector<std::string>{};
    return std::vector<std::string>{std::move(value)};
  }

 private:
  std::string gecos_;
  int field_;
};

}  // namespace ptv
