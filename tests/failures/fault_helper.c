/* A stand-in for twilio-verify-helper in the failure table: it runs the
 * real helper with the fault shim preloaded and PTV_FAULT set, both fixed
 * when it is built (the module starts its helper with an empty
 * environment, so a fault cannot be asked for any other way). The module
 * and the helper are the real ones; only the calls the shim names fail.
 *   PTV_REAL_HELPER  the helper to run
 *   PTV_FAULT_SHIM   the shim library
 *   PTV_FAULT_SPEC   what fails, for example "socket:EMFILE" */
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argc;
  char preload[] = "LD_PRELOAD=" PTV_FAULT_SHIM;
  char fault[] = "PTV_FAULT=" PTV_FAULT_SPEC;
  char *envp[] = {preload, fault, 0};
  execve(PTV_REAL_HELPER, argv, envp);
  return 127;
}
