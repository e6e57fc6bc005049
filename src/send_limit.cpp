#include "send_limit.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <expected>
#include <vector>

#include "config.hpp"
#include "file_descriptor.hpp"

namespace ptv {

namespace {

constexpr std::size_t kMaxHexNameBytes = 100;
constexpr int kMaxTimestampDigits = 19;

std::string error_text(int err) { return std::strerror(err); }

std::string mode_text(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04o",
                static_cast<unsigned>(mode & 07777));
  return buffer;
}

// The state directory: created (0700) when missing, then opened without
// following a symbolic link and checked on the open descriptor.
std::expected<FileDescriptor, std::string> open_state_dir(
    const SendLimitSettings& s) {
  const std::string what = "state directory " + s.state_dir;
  if (s.state_dir.empty() || s.state_dir.front() != '/')
    return std::unexpected(what + ": not an absolute path");
  if (mkdir(s.state_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return std::unexpected(what + ": cannot create: " + error_text(errno));
  const int fd = open(s.state_dir.c_str(),
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    struct stat st {};
    if (lstat(s.state_dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return std::unexpected(what + ": is a symbolic link, which is refused");
    if (err == ENOTDIR) return std::unexpected(what + ": is not a directory");
    return std::unexpected(what + ": cannot open: " + error_text(err));
  }
  FileDescriptor dir(fd);
  struct stat st {};
  if (fstat(dir.get(), &st) != 0)
    return std::unexpected(what + ": cannot stat: " + error_text(errno));
  if (!S_ISDIR(st.st_mode))
    return std::unexpected(what + ": is not a directory");
  if (st.st_uid != s.owner)
    return std::unexpected(what + ": must be owned by " +
                           (s.owner == 0 ? std::string("root")
                                         : "uid " + std::to_string(s.owner)) +
                           " (it is owned by uid " + std::to_string(st.st_uid) +
                           ")");
  if ((st.st_mode & 022) != 0)
    return std::unexpected(what + ": must not be writable by group or others "
                                  "(mode is " + mode_text(st.st_mode) +
                           "; run chmod 700 " + s.state_dir + ")");
  return dir;
}

void sleep_ms(long ms) {
  struct timespec ts {};
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

long monotonic_ms() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The per-user lock file: never renamed or removed, so every process locks
// the same inode. Waits at most lock_wait_ms (a PAM module must not hang a
// login forever behind a stuck process).
std::expected<FileDescriptor, std::string> lock_user(
    const SendLimitSettings& s, int dir, const std::string& name) {
  const std::string what = "lock file " + s.state_dir + "/" + name;
  const int fd = openat(dir, name.c_str(),
                        O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                            O_NONBLOCK,
                        0600);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP)
      return std::unexpected(what + ": is a symbolic link, which is refused");
    return std::unexpected(what + ": cannot open: " + error_text(err));
  }
  FileDescriptor lock(fd);
  struct stat st {};
  if (fstat(lock.get(), &st) != 0)
    return std::unexpected(what + ": cannot stat: " + error_text(errno));
  if (!S_ISREG(st.st_mode))
    return std::unexpected(what + ": is not a regular file");
  const long deadline = monotonic_ms() + s.lock_wait_ms;
  for (;;) {
    if (flock(lock.get(), LOCK_EX | LOCK_NB) == 0) return lock;
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK)
      return std::unexpected(what + ": cannot lock: " + error_text(err));
    if (monotonic_ms() >= deadline)
      return std::unexpected(what + ": still locked by another login after " +
                             std::to_string(s.lock_wait_ms) + " ms");
    sleep_ms(5);
  }
}

std::string corrupt(const std::string& path, const std::string& why) {
  return "state file " + path + " is corrupt (" + why +
         "); sends are refused for this user until it is removed";
}

// Reads the entries; a missing file is an empty list. Anything but lines
// of 1 to 19 digits is corrupt.
std::expected<std::vector<std::int64_t>, std::string> read_entries(
    const SendLimitSettings& s, int dir, const std::string& name) {
  const std::string path = s.state_dir + "/" + name;
  std::vector<std::int64_t> entries;
  const int fd = openat(dir, name.c_str(),
                        O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return entries;
    if (err == ELOOP)
      return std::unexpected("state file " + path +
                             ": is a symbolic link, which is refused");
    return std::unexpected("state file " + path + ": cannot open: " +
                           error_text(err));
  }
  FileDescriptor file(fd);
  struct stat st {};
  if (fstat(file.get(), &st) != 0)
    return std::unexpected("state file " + path + ": cannot stat: " +
                           error_text(errno));
  if (!S_ISREG(st.st_mode))
    return std::unexpected(corrupt(path, "not a regular file"));
  std::string text;
  char buffer[1024];
  for (;;) {
    const ssize_t got = read(file.get(), buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::unexpected("state file " + path + ": read error: " +
                             error_text(errno));
    }
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
    if (text.size() > kMaxStateFileBytes)
      return std::unexpected(corrupt(
          path, "larger than " + std::to_string(kMaxStateFileBytes) + " bytes"));
  }
  std::size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    ++line;
    const std::size_t end = text.find('\n', pos);
    if (end == std::string::npos)
      return std::unexpected(
          corrupt(path, "line " + std::to_string(line) + " is not terminated"));
    const std::string_view digits(text.data() + pos, end - pos);
    if (digits.empty() || digits.size() > kMaxTimestampDigits ||
        !std::all_of(digits.begin(), digits.end(),
                     [](char c) { return c >= '0' && c <= '9'; }))
      return std::unexpected(corrupt(
          path, "line " + std::to_string(line) + " is not a time in seconds"));
    std::int64_t value = 0;
    for (char c : digits) value = value * 10 + (c - '0');
    entries.push_back(value);
    pos = end + 1;
  }
  return entries;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Writes the entries to a temporary file in the same directory and renames
// it over the state file. Called with the user's lock held, so the fixed
// temporary name cannot be in use by another process.
std::string write_entries(const SendLimitSettings& s, int dir,
                          const std::string& name, const std::string& tmp,
                          const std::vector<std::int64_t>& entries) {
  const std::string path = s.state_dir + "/" + name;
  std::string text;
  for (std::int64_t e : entries) text += std::to_string(e) + "\n";
  if (unlinkat(dir, tmp.c_str(), 0) != 0 && errno != ENOENT)
    return "state file " + path + ": cannot remove the stale " + tmp + ": " +
           error_text(errno);
  const int fd = openat(dir, tmp.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                            O_NOCTTY,
                        0600);
  if (fd < 0)
    return "state file " + path + ": cannot create " + tmp + ": " +
           error_text(errno);
  FileDescriptor file(fd);
  std::string problem;
  if (!write_all(file.get(), text)) {
    problem = "cannot write " + tmp + ": " + error_text(errno);
  } else if (fsync(file.get()) != 0) {
    problem = "cannot fsync " + tmp + ": " + error_text(errno);
  }
  file.reset();
  if (problem.empty() && renameat(dir, tmp.c_str(), dir, name.c_str()) != 0)
    problem = "cannot rename " + tmp + ": " + error_text(errno);
  if (!problem.empty()) {
    unlinkat(dir, tmp.c_str(), 0);
    return "state file " + path + ": " + problem;
  }
  // The rename is durable once the directory is: best effort.
  (void)fsync(dir);
  return {};
}

bool counts(std::int64_t entry, std::int64_t now, long window_s) {
  return entry > now - window_s && entry < now + window_s;
}

struct Locked {
  FileDescriptor dir;
  FileDescriptor lock;
  std::string data_name;
  std::string tmp_name;
};

std::expected<Locked, std::string> open_and_lock(const SendLimitSettings& s,
                                                 std::string_view user) {
  if (s.count < 1 || s.window_s < 1)
    return std::unexpected(std::string("send limit settings out of range"));
  auto dir = open_state_dir(s);
  if (!dir) return std::unexpected(dir.error());
  const std::string stem = state_file_stem(user);
  auto lock = lock_user(s, dir->get(), stem + ".lock");
  if (!lock) return std::unexpected(lock.error());
  return Locked{std::move(*dir), std::move(*lock), stem + ".sends",
                stem + ".tmp"};
}

// ---------------------------------------------------------------- SHA-256

constexpr std::array<std::uint32_t, 64> kSha256K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::uint32_t rotr(std::uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

void sha256_block(std::array<std::uint32_t, 8>& h, const unsigned char* p) {
  std::array<std::uint32_t, 64> w{};
  for (int i = 0; i < 16; ++i)
    w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
           (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
  for (int i = 16; i < 64; ++i) {
    const std::uint32_t s0 =
        rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const std::uint32_t s1 =
        rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5],
                g = h[6], k = h[7];
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const std::uint32_t ch = (e & f) ^ (~e & g);
    const std::uint32_t t1 = k + s1 + ch + kSha256K[i] + w[i];
    const std::uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const std::uint32_t t2 = s0 + maj;
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string sha256_hex(std::string_view data) {
  std::array<std::uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                    0xa54ff53a, 0x510e527f, 0x9b05688c,
                                    0x1f83d9ab, 0x5be0cd19};
  std::string padded(data);
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  padded.push_back(static_cast<char>(0x80));
  while (padded.size() % 64 != 56) padded.push_back('\0');
  for (int i = 7; i >= 0; --i)
    padded.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  for (std::size_t off = 0; off < padded.size(); off += 64)
    sha256_block(h, reinterpret_cast<const unsigned char*>(padded.data()) + off);
  std::string out;
  for (std::uint32_t word : h)
    for (int shift = 28; shift >= 0; shift -= 4)
      out.push_back(kHex[(word >> shift) & 0xf]);
  return out;
}

std::string state_file_stem(std::string_view user) {
  if (user.size() > kMaxHexNameBytes) return "h-" + sha256_hex(user);
  std::string out = "u-";
  for (char c : user) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xf]);
  }
  return out;
}

std::int64_t realtime_now() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec);
}

SendLimitSettings send_limit_settings(const Config& config) {
  SendLimitSettings s;
  s.state_dir = config.state_dir;
  s.count = config.send_limit_count;
  s.window_s = config.send_limit_window_s;
  return s;
}

SendReservation reserve_send(const SendLimitSettings& settings,
                             std::string_view user, std::int64_t now) {
  SendReservation r;
  auto locked = open_and_lock(settings, user);
  if (!locked) {
    r.detail = locked.error();
    return r;
  }
  auto entries = read_entries(settings, locked->dir.get(), locked->data_name);
  if (!entries) {
    r.detail = entries.error();
    return r;
  }
  std::vector<std::int64_t> kept;
  for (std::int64_t e : *entries)
    if (counts(e, now, settings.window_s)) kept.push_back(e);
  std::sort(kept.begin(), kept.end());
  r.used = static_cast<int>(kept.size());
  if (r.used >= settings.count) {
    r.decision = SendDecision::LimitReached;
    // The oldest entry that must expire for a start to be allowed again.
    const std::int64_t frees = kept[kept.size() - settings.count];
    r.retry_in_s = std::max<std::int64_t>(1, frees + settings.window_s - now);
    r.detail = "send limit reached: " + std::to_string(r.used) +
               " codes sent in the last " + std::to_string(settings.window_s) +
               " s (send_limit.count = " + std::to_string(settings.count) +
               "); the next is allowed in " + std::to_string(r.retry_in_s) +
               " s";
    return r;
  }
  kept.push_back(now);
  if (std::string problem = write_entries(settings, locked->dir.get(),
                                          locked->data_name, locked->tmp_name,
                                          kept);
      !problem.empty()) {
    r.detail = std::move(problem);
    return r;
  }
  r.decision = SendDecision::Allowed;
  r.stamp = now;
  return r;
}

std::string release_send(const SendLimitSettings& settings,
                         std::string_view user, std::int64_t stamp,
                         std::int64_t now) {
  auto locked = open_and_lock(settings, user);
  if (!locked) return locked.error();
  auto entries = read_entries(settings, locked->dir.get(), locked->data_name);
  if (!entries) return entries.error();
  std::vector<std::int64_t> kept;
  bool removed = false;
  for (std::int64_t e : *entries) {
    if (!removed && e == stamp) {
      removed = true;
      continue;
    }
    if (counts(e, now, settings.window_s)) kept.push_back(e);
  }
  if (!removed) return {};  // already expired or pruned: nothing to give back
  std::sort(kept.begin(), kept.end());
  return write_entries(settings, locked->dir.get(), locked->data_name,
                       locked->tmp_name, kept);
}

}  // namespace ptv
