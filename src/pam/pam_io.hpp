// The module's side of the PAM application: its conversation (one message
// per call, replies wiped before they are freed) and its syslog
// (pam_syslog, LOG_AUTHPRIV).
#pragma once

#include <security/pam_modules.h>

#include <string_view>

#include "core/conversation.hpp"
#include "util/log.hpp"

namespace ptv {

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

// Writes through pam_syslog, which prefixes the module and service name.
class PamLogger final : public Logger {
 public:
  explicit PamLogger(pam_handle_t* pamh) : pamh_(pamh) {}
  void log(int priority, std::string_view message) override;

 private:
  pam_handle_t* pamh_;
};

}  // namespace ptv
