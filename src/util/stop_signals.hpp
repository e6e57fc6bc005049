// While the module waits on the network or on a child process, the person
// at the keyboard of su or sudo owns the process's signals. Two things
// follow, and this RAII guard handles both for the calling thread:
//  - the terminal stop signals (SIGTSTP, SIGTTIN, SIGTTOU) are blocked, so
//    that Ctrl-Z cannot stop the wait (login runs as root and is not
//    set-id, and its console user could otherwise stop it); they stay
//    pending and take effect when the guard restores the mask;
//  - SIGCONT is held too, so that a stop the guard cannot block (SIGSTOP,
//    sent by the invoking user, who keeps su's real uid) is seen: a
//    pending SIGCONT means the process was stopped and continued, and the
//    time it spent stopped must not count as Twilio or the directory being
//    silent. The signal is passed on when the guard ends.
#pragma once

#include <signal.h>

namespace ptv {

class HoldStopSignals {
 public:
  HoldStopSignals() noexcept;
  ~HoldStopSignals();
  HoldStopSignals(const HoldStopSignals&) = delete;
  HoldStopSignals& operator=(const HoldStopSignals&) = delete;

  // True once for every stop-and-continue seen since the last call (or
  // since the guard was made): the caller then gives its deadline back
  // the time it may have lost.
  bool continued() noexcept;

 private:
  sigset_t saved_{};
  bool saved_ok_ = false;
  bool cont_was_pending_ = false;  // before the guard: not ours to take
  bool took_cont_ = false;         // a SIGCONT was taken: passed on at the end
};

}  // namespace ptv
