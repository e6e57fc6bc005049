#include "util/stop_signals.hpp"

#include <pthread.h>
#include <time.h>

namespace ptv {

namespace {

sigset_t held_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTSTP);
  sigaddset(&set, SIGTTIN);
  sigaddset(&set, SIGTTOU);
  sigaddset(&set, SIGCONT);
  return set;
}

bool cont_pending() {
  sigset_t pending;
  sigemptyset(&pending);
  return sigpending(&pending) == 0 && sigismember(&pending, SIGCONT) == 1;
}

}  // namespace

HoldStopSignals::HoldStopSignals() noexcept {
  const sigset_t held = held_signals();
  saved_ok_ = pthread_sigmask(SIG_BLOCK, &held, &saved_) == 0;
  // A SIGCONT the application itself had blocked and left pending is not
  // evidence of a stop during our wait.
  cont_was_pending_ = saved_ok_ && cont_pending();
}

bool HoldStopSignals::continued() noexcept {
  if (!saved_ok_ || cont_was_pending_ || !cont_pending()) return false;
  // Take it, so that the next stop is seen as well.
  sigset_t cont;
  sigemptyset(&cont);
  sigaddset(&cont, SIGCONT);
  const struct timespec now {};
  if (sigtimedwait(&cont, nullptr, &now) == SIGCONT) took_cont_ = true;
  return true;
}

HoldStopSignals::~HoldStopSignals() {
  if (!saved_ok_) return;
  // Handed back while still blocked, so that it is pending when the mask
  // is restored: an application that handles or waits for SIGCONT still
  // gets it.
  if (took_cont_) raise(SIGCONT);
  pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
}

}  // namespace ptv
