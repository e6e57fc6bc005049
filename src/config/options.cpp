#include "config/options.hpp"

#include <string_view>

#include "util/log.hpp"

namespace ptv {

std::expected<ModuleOptions, std::string> parse_module_options(
    int argc, const char** argv) {
  ModuleOptions options;
  for (int i = 0; i < argc; ++i) {
    if (argv[i] == nullptr) return std::unexpected("null module argument");
    const std::string_view arg(argv[i]);
    if (arg == "debug") {
      options.debug = true;
    } else if (arg.starts_with("conf=") || arg.starts_with("helper=")) {
      const bool conf = arg.starts_with("conf=");
      const std::string_view path = arg.substr(conf ? 5 : 7);
      if (path.empty() || path.front() != '/')
        return std::unexpected(std::string(conf ? "conf=" : "helper=") +
                               " needs an absolute path, got \"" +
                               log_safe(arg, 200) + "\"");
      (conf ? options.config_path : options.helper_path) = std::string(path);
    } else {
      return std::unexpected("unknown module argument \"" +
                             log_safe(arg, 200) + "\"");
    }
  }
  return options;
}

}  // namespace ptv
