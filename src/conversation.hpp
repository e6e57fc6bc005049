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
};

class PamConversation final : public Conversation {
 public:
  explicit PamConversation(pam_handle_t* pamh) : pamh_(pamh) {}
  std::expected<Secret, ConversationError> ask_hidden(
      std::string_view prompt) override;
  void show_error(std::string_view message) override;

 private:
  std::expected<Secret, ConversationError> converse(int style,
                                                    std::string_view text);
  pam_handle_t* pamh_;
};

}  // namespace ptv
