// Every setting of the file, as a table: its name, where its value goes in
// the Config and how it is checked. Adding a setting is one row here, one
// field in its part's struct and one line of documentation.
#pragma once

#include <libconfig.h>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace ptv {

// Reads the settings under the root of the parsed file into `config`.
ConfigResult read_settings(const Reader& r, const config_setting_t* root,
                           Config& config);

}  // namespace ptv
