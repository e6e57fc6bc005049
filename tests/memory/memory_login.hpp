// What the memory programs (loop_auth, heap_scan) share: a PAM conversation
// that answers every prompt with a code, the head of their configuration
// against the emulator, and the writing of a private file.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <functional>
#include <string>

#include <security/pam_appl.h>

#include "emulator_process.hpp"

namespace ptv_memory {

// What both programs check first: run as root (the module accepts only a
// root-owned config file), given the module, PTV_MEMORY_WORK set. The work
// directory (created), or the exit status: 77 skipped, 2 usage.
inline std::expected<std::string, int> work_directory(int argc,
                                                      const char* usage) {
  if (geteuid() != 0) {
    std::printf("skipped: the module accepts only a root-owned config file\n");
    return std::unexpected(77);
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s\n", usage);
    return std::unexpected(2);
  }
  const char* work = std::getenv("PTV_MEMORY_WORK");
  if (work == nullptr) {
    std::fprintf(stderr, "PTV_MEMORY_WORK is not set\n");
    return std::unexpected(2);
  }
  mkdir(work, 0700);
  return work;
}

// The conversation's state: how many prompts it answered, and the reply to
// each (given the prompt's number, 1 for the first).
struct Prompter {
  std::function<std::string(int prompt)> code;
  int prompts = 0;
};

// A pam_conv function over a Prompter (its appdata_ptr): every prompt,
// echoed or not, is answered with prompter.code; other messages get no
// reply.
inline int answer_prompts(int n, const struct pam_message** msg,
                          struct pam_response** resp, void* data) {
  auto* prompter = static_cast<Prompter*>(data);
  auto* replies =
      static_cast<pam_response*>(std::calloc(n, sizeof(struct pam_response)));
  if (replies == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
        msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
      continue;
    const std::string code = prompter->code(++prompter->prompts);
    replies[i].resp = strdup(code.c_str());
    if (replies[i].resp == nullptr) {
      for (int j = 0; j < i; ++j) std::free(replies[j].resp);
      std::free(replies);
      return PAM_BUF_ERR;
    }
  }
  *resp = replies;
  return PAM_SUCCESS;
}

// The twilio group that points at the emulator, and the users source.
inline std::string config_head(const std::string& account,
                               const std::string& token,
                               const std::string& service,
                               const ptv_test::EmulatorProcess& em) {
  return "twilio = {\n"
         "  account_sid = \"" + account + "\";\n"
         "  auth_token = \"" + token + "\";\n"
         "  service_sid = \"" + service + "\";\n"
         "  api_url = \"" + em.api_url() + "\";\n"
         "  ca_file = \"" + em.ca_file() + "\";\n"
         "};\n"
         "phone_sources = [ \"users\" ];\n";
}

// Writes `text` to a new file only its owner may read (mode 0600).
inline bool write_private_file(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  close(fd);
  return done == text.size();
}

}  // namespace ptv_memory
