// The "users" phone source: the users list of the configuration file.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "phone/source.hpp"

namespace ptv {

class UsersSource final : public NumberSource {
 public:
  explicit UsersSource(
      const std::vector<std::pair<std::string, std::string>>& users)
      : users_(users) {}
  [[nodiscard]] std::string_view name() const override { return "users"; }
  SourceValues values(const std::string& account) override {
    std::vector<std::string> found;
    for (const auto& [user, number] : users_)
      if (user == account) found.push_back(number);
    return found;
  }

 private:
  const std::vector<std::pair<std::string, std::string>>& users_;
};

}  // namespace ptv
