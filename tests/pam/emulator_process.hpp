// Runs the bundled Verify emulator as a child process for the PAM-level
// tests and drives its control port (plain HTTP on loopback) with libcurl.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ptv_test {

struct OutboxMessage {
  std::string to;
  std::string code;
  std::string verification_sid;
};

struct RecordedRequest {
  std::string method;
  std::string path;
  std::string status_field;  // the form's Status, for cancels
  long status = 0;           // the HTTP status the emulator answered
};

class EmulatorProcess {
 public:
  EmulatorProcess(std::string workdir, std::string account_sid,
                  std::string auth_token, std::string service_sid,
                  std::string api_key_sid = {}, std::string api_key_secret = {});
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  bool start();  // makes the test CA, starts, waits for the ready file
  void stop();   // SIGTERM by pid, then SIGKILL if needed

  std::string api_url() const;
  std::string ca_file() const { return workdir_ + "/ca.pem"; }
  std::string other_ca_file() const { return workdir_ + "/other-ca.pem"; }
  int port() const { return port_; }

  bool reset();
  bool set_faults(const std::string& json);
  bool refuse(bool on);
  bool advance_clock(int seconds);
  std::vector<OutboxMessage> outbox();
  std::vector<RecordedRequest> requests();
  std::string last_code(const std::string& to);

 private:
  bool control(const char* method, const std::string& path,
               const std::string& body, std::string* response);

  std::string workdir_, account_sid_, auth_token_, service_sid_;
  std::string api_key_sid_, api_key_secret_;
  pid_t pid_ = -1;
  int port_ = 0;
  int control_port_ = 0;
};

}  // namespace ptv_test
