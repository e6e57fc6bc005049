#!/bin/sh
# config/config.hpp (the whole Config) is included only by the config
# folder, the glue (the PAM entry point, the helper's session, the admin
# tool, whose checks read every part) and the admin-facing entry points; every other room takes only its part of the
# configuration (twilio/settings.hpp, core/policy.hpp, phone/settings.hpp,
# state/settings.hpp).
#   check_config_includes.sh SRC_DIR
set -eu
src=$1
allowed='^(config/.*|pam/pam_twilio_verify\.cpp|helper/.*|admin/.*|[a-z]+/[a-z_]+_main\.cpp)$'
bad=0
found=0
for f in $(cd "$src" && grep -rl '#include "config/config.hpp"' --include='*.cpp' --include='*.hpp' .); do
  f=${f#./}
  found=1
  if ! echo "$f" | grep -Eq "$allowed"; then
    echo "$f includes config/config.hpp; take the part of the configuration it needs instead"
    bad=1
  fi
done
[ "$found" = 1 ] || { echo "no file includes config/config.hpp: is $src the source tree?" >&2; exit 2; }
[ "$bad" = 0 ] && echo "config/config.hpp is included only by the config folder, the glue and entry points"
exit "$bad"
