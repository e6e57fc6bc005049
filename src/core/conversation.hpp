// The conversation with the person logging in, behind a small interface:
// the module's side talks to the PAM application (pam/pam_io.hpp), the
// helper's side relays through the module (helper/helper_session.cpp), and
// unit tests and fuzzers script it.
#pragma once

#include <expected>
#include <string_view>

#include "core/code_input.hpp"
#include "util/secret.hpp"

namespace ptv {

enum class ConversationError {
  NoConversation,  // the application gave no conversation function
  Failed,          // the conversation function returned an error
  NoReply,         // it returned success but no reply (or a NULL one)
};

const char* describe(ConversationError e);

class Conversation {
 public:
  virtual ~Conversation() = default;
  // PAM_PROMPT_ECHO_OFF; the reply is copied into wiped memory.
  virtual std::expected<Secret, ConversationError> ask_hidden(
      std::string_view prompt) = 0;
  // PAM_ERROR_MSG, best effort.
  virtual void show_error(std::string_view message) = 0;
  // True when the reply equals the password (PAM_AUTHTOK) that an earlier
  // module of the stack collected.
  virtual bool is_password(std::string_view /*reply*/) { return false; }
  // Asks for the code and checks the reply where it was typed: trimmed,
  // 4 to 10 digits or one of the words resend and call (a request), and
  // never the password (sshd's password method answers every prompt with
  // it), which is reported as IsPassword and never passed on. The reply is
  // wiped.
  virtual std::expected<CodeCheck, ConversationError> ask_code(
      std::string_view prompt);
};

}  // namespace ptv
