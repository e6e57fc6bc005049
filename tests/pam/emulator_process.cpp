#include "emulator_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <curl/curl.h>
#include <json-c/json.h>

#ifndef PTV_EMULATOR_DIR
#error "PTV_EMULATOR_DIR must name tests/emulator"
#endif

namespace ptv_test {

namespace {

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string member(json_object* o, const char* key) {
  json_object* v = nullptr;
  if (!json_object_object_get_ex(o, key, &v) || v == nullptr) return {};
  if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
  return {};
}

// Each element of the JSON array `text` as `row` reads it (nothing when
// `text` is not an array).
template <typename T, typename Row>
std::vector<T> array_of(const std::string& text, Row row) {
  std::vector<T> out;
  json_object* list = json_tokener_parse(text.c_str());
  if (list == nullptr) return out;
  if (json_object_is_type(list, json_type_array))
    for (size_t i = 0; i < json_object_array_length(list); ++i)
      out.push_back(row(json_object_array_get_idx(list, i)));
  json_object_put(list);
  return out;
}

}  // namespace

EmulatorProcess::EmulatorProcess(std::string workdir, std::string account_sid,
                                 std::string auth_token,
                                 std::string service_sid,
                                 std::string api_key_sid,
                                 std::string api_key_secret)
    : workdir_(std::move(workdir)),
      account_sid_(std::move(account_sid)),
      auth_token_(std::move(auth_token)),
      service_sid_(std::move(service_sid)),
      api_key_sid_(std::move(api_key_sid)),
      api_key_secret_(std::move(api_key_secret)) {}

EmulatorProcess::~EmulatorProcess() { stop(); }

std::string EmulatorProcess::api_url() const {
  return "https://127.0.0.1:" + std::to_string(port_);
}

bool EmulatorProcess::start() {
  const std::string dir = PTV_EMULATOR_DIR;
  // Without the test's preloads (pam_wrapper, and the ASan runtime under
  // PTV_SANITIZE, whose leak check would fail the helper programs).
  const std::string make_ca = "env -u LD_PRELOAD /bin/sh '" + dir +
                              "/make_test_ca.sh' '" +
                              workdir_ + "' >/dev/null";
  if (std::system(make_ca.c_str()) != 0) return false;
  const std::string ready = workdir_ + "/emulator.ready.json";
  unlink(ready.c_str());
  const std::string script = dir + "/verify_emulator.py";
  const std::string cert = workdir_ + "/server.pem";
  const std::string key = workdir_ + "/server.key";
  const std::string log = workdir_ + "/emulator.log";
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    // The test process runs under pam_wrapper and nss_wrapper; the
    // emulator must not.
    unsetenv("LD_PRELOAD");
    std::vector<const char*> argv = {
        "/usr/bin/python3", script.c_str(),       "--cert",
        cert.c_str(),       "--key",              key.c_str(),
        "--account-sid",    account_sid_.c_str(), "--auth-token",
        auth_token_.c_str(), "--service-sid",     service_sid_.c_str(),
        "--ready-file",     ready.c_str(),        "--log-file",
        log.c_str()};
    if (!api_key_sid_.empty()) {
      argv.insert(argv.end(), {"--api-key-sid", api_key_sid_.c_str(),
                               "--api-key-secret", api_key_secret_.c_str()});
    }
    argv.push_back(nullptr);
    execv(argv[0], const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    const std::string text = read_file(ready);
    if (text.empty()) continue;
    json_object* o = json_tokener_parse(text.c_str());
    if (o == nullptr) continue;
    json_object* v = nullptr;
    if (json_object_object_get_ex(o, "port", &v)) port_ = json_object_get_int(v);
    if (json_object_object_get_ex(o, "control_port", &v))
      control_port_ = json_object_get_int(v);
    json_object_put(o);
    if (port_ > 0 && control_port_ > 0) return true;
  }
  return false;
}

void EmulatorProcess::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool EmulatorProcess::control(const char* method, const std::string& path,
                              const std::string& body, std::string* response) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> c(curl_easy_init(),
                                                         curl_easy_cleanup);
  if (!c) return false;
  std::string url =
      "http://127.0.0.1:" + std::to_string(control_port_) + path;
  std::string sink;
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_PROXY, "");
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, response ? response : &sink);
  curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  if (std::string(method) == "POST") {
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.c_str());
  }
  const CURLcode rc = curl_easy_perform(c.get());
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  return rc == CURLE_OK && status >= 200 && status < 300;
}

bool EmulatorProcess::reset() { return control("POST", "/reset", "{}", nullptr); }

bool EmulatorProcess::set_faults(const std::string& json) {
  return control("POST", "/faults", json, nullptr);
}

bool EmulatorProcess::refuse(bool on) {
  return control("POST", "/listen",
                 on ? "{\"refuse\": true}" : "{\"refuse\": false}", nullptr);
}

bool EmulatorProcess::advance_clock(int seconds) {
  return control("POST", "/clock",
                 "{\"advance_seconds\": " + std::to_string(seconds) + "}",
                 nullptr);
}

std::vector<OutboxMessage> EmulatorProcess::outbox() {
  std::string text;
  if (!control("GET", "/outbox", "", &text)) return {};
  return array_of<OutboxMessage>(text, [](json_object* m) {
    return OutboxMessage{member(m, "to"), member(m, "code"),
                         member(m, "verification_sid")};
  });
}

std::vector<RecordedRequest> EmulatorProcess::requests() {
  std::string text;
  if (!control("GET", "/requests", "", &text)) return {};
  return array_of<RecordedRequest>(text, [](json_object* r) {
    RecordedRequest req{member(r, "method"), member(r, "path"), {}, 0};
    json_object* form = nullptr;
    if (json_object_object_get_ex(r, "form", &form))
      req.status_field = member(form, "Status");
    json_object* st = nullptr;
    if (json_object_object_get_ex(r, "status", &st))
      req.status = json_object_get_int(st);
    return req;
  });
}

std::string EmulatorProcess::last_code(const std::string& to) {
  std::string code;
  for (const auto& m : outbox())
    if (to.empty() || m.to == to) code = m.code;
  return code;
}

}  // namespace ptv_test
