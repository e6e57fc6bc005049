#include "pam/pam_io.hpp"

#include <security/pam_appl.h>
#include <security/pam_ext.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace ptv {

namespace {

// The application's replies, wiped and freed however the conversation
// step ends (an allocation that fails while the reply is copied, too).
struct Responses {
  struct pam_response* list = nullptr;
  Responses() = default;
  Responses(const Responses&) = delete;
  Responses& operator=(const Responses&) = delete;
  ~Responses() {
    if (list == nullptr) return;
    if (list[0].resp != nullptr) {
      explicit_bzero(list[0].resp, std::strlen(list[0].resp));
      std::free(list[0].resp);
    }
    std::free(list);
  }
};

}  // namespace

std::expected<Secret, ConversationError> PamConversation::converse(
    int style, std::string_view text) {
  const void* item = nullptr;
  if (pam_get_item(pamh_, PAM_CONV, &item) != PAM_SUCCESS || item == nullptr)
    return std::unexpected(ConversationError::NoConversation);
  const auto* conv = static_cast<const struct pam_conv*>(item);
  if (conv->conv == nullptr)
    return std::unexpected(ConversationError::NoConversation);

  const std::string message_text(text);
  struct pam_message message {};
  message.msg_style = style;
  message.msg = message_text.c_str();
  const struct pam_message* messages[] = {&message};
  Responses responses;
  const int rc = conv->conv(1, messages, &responses.list, conv->appdata_ptr);

  Secret reply;
  bool have_reply = false;
  if (responses.list != nullptr && responses.list[0].resp != nullptr) {
    const char* typed = responses.list[0].resp;
    const std::size_t n = std::strlen(typed);
    reply.reserve(n + 1);
    reply.append(std::string_view(typed, n));
    have_reply = true;
  }
  if (rc != PAM_SUCCESS) return std::unexpected(ConversationError::Failed);
  if (style == PAM_PROMPT_ECHO_OFF && !have_reply)
    return std::unexpected(ConversationError::NoReply);
  return reply;
}

std::expected<Secret, ConversationError> PamConversation::ask_hidden(
    std::string_view prompt) {
  return converse(PAM_PROMPT_ECHO_OFF, prompt);
}

void PamConversation::show_error(std::string_view message) {
  if (!silent_) (void)converse(PAM_ERROR_MSG, message);
}

bool PamConversation::is_password(std::string_view reply) {
  const void* item = nullptr;
  if (pam_get_item(pamh_, PAM_AUTHTOK, &item) != PAM_SUCCESS || item == nullptr)
    return false;
  const char* password = static_cast<const char*>(item);
  const std::size_t n = std::strlen(password);
  if (n != reply.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>(password[i] ^ reply[i]);
  return diff == 0;
}

void PamLogger::log(int priority, std::string_view message) {
  std::string line(message);
  pam_syslog(pamh_, priority, "%s", line.c_str());
}

}  // namespace ptv
