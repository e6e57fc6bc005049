// The PAM conversation: one message per call, replies wiped before free.
#pragma once

#include <expected>
#include <string_view>

#include <security/pam_modules.h>

#include "secret.hpp"

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
};

class PamConversation final : public Conversation {
 public:
  // With silent (PAM_SILENT), messages are not shown; prompts still are.
  PamConversation(pam_handle_t* pamh, bool silent)
      : pamh_(pamh), silent_(silent) {}
  std::expected<Secret, ConversationError> ask_hidden(
      std::string_view prompt) override;
  void show_error(std::string_view message) override;
  bool is_password(std::string_view reply) override;

 private:
  std::expected<Secret, ConversationError> converse(int style,
                                                    std::string_view text);
  pam_handle_t* pamh_;
  bool silent_;
};

}  // namespace ptv
