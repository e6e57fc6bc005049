// twilio-verify-helper: the process that does the network and directory
// work of one login for pam_twilio_verify.so. The module starts it (fork
// and exec, as root, empty environment, known resource limits, no
// terminal) with a stream socket on standard input, and nothing else may:
// it refuses to run from a terminal or without that socket.
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "util/child_process.hpp"
#include "helper/helper_session.hpp"
#include "protocol/protocol.hpp"

int main() {
  // It holds the account's credentials and, for a moment, a typed code.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (isatty(0) || isatty(1) || isatty(2)) {
    std::fputs("twilio-verify-helper: this program is started by the PAM "
               "module pam_twilio_verify.so, not from a terminal\n",
               stderr);
    return 2;
  }
  struct stat st {};
  if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    std::fputs("twilio-verify-helper: standard input is not the module's "
               "socket\n",
               stderr);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  umask(077);
  ptv::RealWorld world;
  // The module set the limits; where the caller had lowered a hard limit
  // that cannot be raised again, a failure here would be the caller's
  // doing, not an outage: say so instead of trying.
  if (!ptv::reset_resource_limits())
    world.unfit_ =
        "the helper's resource limits are below what it needs (the caller "
        "lowered them, and they cannot be raised without CAP_SYS_RESOURCE)";
  ptv::MessageChannel channel(0);
  return ptv::serve_login(channel, world);
}
