#include "core/conversation.hpp"


namespace ptv {

const char* describe(ConversationError e) {
  switch (e) {
    case ConversationError::NoConversation:
      return "the application has no PAM conversation";
    case ConversationError::Failed:
      return "the PAM conversation failed";
    case ConversationError::NoReply:
      return "the PAM conversation returned no reply";
  }
  return "conversation error";
}

std::expected<CodeCheck, ConversationError> Conversation::ask_code(
    std::string_view prompt) {
  auto reply = ask_hidden(prompt);
  if (!reply) return std::unexpected(reply.error());
  CodeCheck typed = check_typed_code(reply->view());
  // A password that is a code or one of the words is never acted on: sshd's
  // password method would answer every prompt with it.
  const bool password =
      (typed.problem == CodeProblem::None && is_password(typed.code.view())) ||
      (typed.request != CodeRequest::None && is_password(reply->view()));
  reply->wipe();
  if (password) {
    typed.code.wipe();
    typed.problem = CodeProblem::IsPassword;
    typed.request = CodeRequest::None;
  }
  return typed;
}

}  // namespace ptv
