#include "state/send_limit.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "util/file_descriptor.hpp"

namespace ptv {

namespace {

constexpr std::size_t kHeaderBytes = 4096;
constexpr std::size_t kSlotBytes = 512;
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::array<unsigned char, 8> kMagic = {'P', 'T', 'V', 'S',
                                                 'T', 'A', 'T', 'E'};
constexpr std::size_t kKeyOffset = 32;
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kHeaderSumOffset = kHeaderBytes - 32;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kStampsOffset = 24;
constexpr std::size_t kSlotSumOffset = kSlotBytes - 8;
// Bounds on the table's size in the settings (only tests change it).
constexpr std::uint32_t kMaxBucketCount = 1u << 16;
constexpr std::uint32_t kMaxSlotsPerBucket = 64;
constexpr char kTempName[] = "state.v1.new";

static_assert(kStampsOffset + 4 * kMaxStampsPerRecord <= kSlotSumOffset);

std::string error_text(int err) { return std::strerror(err); }

std::string mode_text(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04o",
                static_cast<unsigned>(mode & 07777));
  return buffer;
}

std::string owner_text(uid_t owner) {
  return owner == 0 ? std::string("root") : "uid " + std::to_string(owner);
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
    return std::unexpected(what + ": must be owned by " + owner_text(s.owner) +
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

// An exclusive flock on fd, waited for at most wait_ms (a PAM module must
// not hang a login forever behind a stuck process). Empty on success.
std::string lock_exclusive(int fd, long wait_ms, const std::string& what) {
  const long deadline = monotonic_ms() + wait_ms;
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return {};
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK) return what + ": cannot lock: " + error_text(err);
    if (monotonic_ms() >= deadline)
      return what + ": still locked by another login after " +
             std::to_string(wait_ms) + " ms";
    sleep_ms(5);
  }
}

bool pwrite_all(int fd, const unsigned char* data, std::size_t size,
                off_t offset) {
  while (size > 0) {
    const ssize_t n = pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
  return true;
}

bool pread_all(int fd, unsigned char* data, std::size_t size, off_t offset) {
  while (size > 0) {
    const ssize_t n = pread(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;  // the file is shorter than it was
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
  return true;
}

std::uint32_t get32(const unsigned char* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
         (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}

void put32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
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

using Digest = std::array<unsigned char, 32>;

// SHA-256 over data given in pieces (the HMAC needs a key block and the
// message one after the other).
class Sha256 {
 public:
  Sha256& update(const unsigned char* data, std::size_t size) {
    total_ += size;
    while (size > 0) {
      const std::size_t take = std::min(size, block_.size() - used_);
      std::memcpy(block_.data() + used_, data, take);
      used_ += take;
      data += take;
      size -= take;
      if (used_ == block_.size()) {
        sha256_block(h_, block_.data());
        used_ = 0;
      }
    }
    return *this;
  }
  Sha256& update(std::string_view data) {
    return update(reinterpret_cast<const unsigned char*>(data.data()),
                  data.size());
  }
  Digest finish() {
    const std::uint64_t bits = total_ * 8;
    const unsigned char one = 0x80, zero = 0;
    update(&one, 1);
    while (used_ != 56) update(&zero, 1);
    unsigned char length[8];
    for (int i = 0; i < 8; ++i)
      length[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(length, sizeof length);
    Digest out;
    for (std::size_t i = 0; i < 8; ++i)
      for (std::size_t j = 0; j < 4; ++j)
        out[4 * i + j] = static_cast<unsigned char>(h_[i] >> (24 - 8 * j));
    return out;
  }

 private:
  std::array<std::uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                     0xa54ff53a, 0x510e527f, 0x9b05688c,
                                     0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block_{};
  std::size_t used_ = 0;
  std::uint64_t total_ = 0;
};

// HMAC-SHA-256 (RFC 2104) of the concatenated parts.
Digest hmac_sha256(std::string_view key,
                   std::initializer_list<std::string_view> parts) {
  std::array<unsigned char, 64> block{};
  if (key.size() > block.size()) {
    const Digest short_key = Sha256().update(key).finish();
    std::copy(short_key.begin(), short_key.end(), block.begin());
  } else {
    std::memcpy(block.data(), key.data(), key.size());
  }
  std::array<unsigned char, 64> pad{};
  for (std::size_t i = 0; i < pad.size(); ++i) pad[i] = block[i] ^ 0x36;
  Sha256 inner;
  inner.update(pad.data(), pad.size());
  for (std::string_view part : parts) inner.update(part);
  const Digest inner_digest = inner.finish();
  for (std::size_t i = 0; i < pad.size(); ++i) pad[i] = block[i] ^ 0x5c;
  return Sha256()
      .update(pad.data(), pad.size())
      .update(inner_digest.data(), inner_digest.size())
      .finish();
}

constexpr char kHex[] = "0123456789abcdef";

std::string hex(const Digest& d) {
  std::string out;
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

// ------------------------------------------------------------------ slots

enum class Kind : unsigned char { Free = 0, Send = 1, Grace = 2 };
using Tag = std::array<unsigned char, kTagBytes>;
using SlotBytes = std::array<unsigned char, kSlotBytes>;

struct Slot {
  Kind kind = Kind::Free;
  bool damaged = false;  // failed its checksum, or makes no sense
  Tag account{};
  std::vector<std::uint32_t> stamps;  // Send, oldest first
  Tag address{};                      // Grace
  std::uint32_t created = 0, until = 0;
};

Digest slot_sum(const unsigned char* p) {
  return Sha256().update(p, kSlotSumOffset).finish();
}

Slot decode_slot(const unsigned char* p) {
  Slot s;
  if (std::all_of(p, p + kSlotBytes, [](unsigned char c) { return c == 0; }))
    return s;
  const Digest sum = slot_sum(p);
  const std::size_t stamps = p[1];
  s.kind = static_cast<Kind>(p[0]);
  s.damaged = !std::equal(p + kSlotSumOffset, p + kSlotBytes, sum.begin()) ||
              (s.kind != Kind::Send && s.kind != Kind::Grace) ||
              (s.kind == Kind::Send &&
               (stamps == 0 || stamps > kMaxStampsPerRecord));
  if (s.damaged) return s;
  std::copy(p + 8, p + 8 + kTagBytes, s.account.begin());
  if (s.kind == Kind::Send) {
    for (std::size_t i = 0; i < stamps; ++i)
      s.stamps.push_back(get32(p + kStampsOffset + 4 * i));
  } else {
    std::copy(p + kStampsOffset, p + kStampsOffset + kTagBytes,
              s.address.begin());
    s.created = get32(p + kStampsOffset + kTagBytes);
    s.until = get32(p + kStampsOffset + kTagBytes + 4);
  }
  return s;
}

// A free slot (or a send record without sends) is 512 zero bytes.
SlotBytes encode_slot(const Slot& s) {
  SlotBytes b{};
  if (s.kind == Kind::Free || (s.kind == Kind::Send && s.stamps.empty()))
    return b;
  b[0] = static_cast<unsigned char>(s.kind);
  std::copy(s.account.begin(), s.account.end(), b.begin() + 8);
  if (s.kind == Kind::Send) {
    b[1] = static_cast<unsigned char>(s.stamps.size());
    for (std::size_t i = 0; i < s.stamps.size(); ++i)
      put32(b.data() + kStampsOffset + 4 * i, s.stamps[i]);
  } else {
    std::copy(s.address.begin(), s.address.end(), b.begin() + kStampsOffset);
    put32(b.data() + kStampsOffset + kTagBytes, s.created);
    put32(b.data() + kStampsOffset + kTagBytes + 4, s.until);
  }
  const Digest sum = slot_sum(b.data());
  std::copy(sum.begin(), sum.begin() + 8, b.begin() + kSlotSumOffset);
  return b;
}

bool counts(std::int64_t entry, std::int64_t now, long window_s) {
  return entry > now - window_s && entry < now + window_s;
}

bool grace_valid(const Slot& s, std::int64_t now) {
  return s.created <= now && now < s.until;
}

// An entry that may be taken back without losing anything that matters.
bool expired(const Slot& s, const SendLimitSettings& settings,
             std::int64_t now) {
  if (s.damaged) return false;
  if (s.kind == Kind::Send)
    return std::none_of(s.stamps.begin(), s.stamps.end(), [&](std::uint32_t t) {
      return counts(t, now, settings.window_s);
    });
  if (s.kind == Kind::Grace) return !grace_valid(s, now);
  return false;
}

// Times are stored as uint32 seconds (until 2106).
bool fits_stamp(std::int64_t t) {
  return t >= 0 && t <= std::numeric_limits<std::uint32_t>::max();
}

std::string clock_problem(std::int64_t t) {
  return "the time " + std::to_string(t) +
         " is outside what the state file can hold (1970 to 2106): is the "
         "clock right?";
}

// ------------------------------------------------------------ the file

std::uint64_t slot_count(const SendLimitSettings& s) {
  return std::uint64_t{s.bucket_count} * s.slots_per_bucket;
}

std::string check_settings(const SendLimitSettings& s) {
  if (s.count < 1 || s.count > kMaxStampsPerRecord || s.window_s < 1)
    return "send limit settings out of range";
  if (s.bucket_count < 1 || s.bucket_count > kMaxBucketCount ||
      s.slots_per_bucket < 1 || s.slots_per_bucket > kMaxSlotsPerBucket)
    return "state table size out of range";
  return {};
}

std::string corrupt(const std::string& path, const std::string& why) {
  return "state file " + path + " is corrupt (" + why +
         "); no code is sent until it is replaced: remove it and run "
         "twilio-verify-state create (every count starts again)";
}

using Header = std::array<unsigned char, kHeaderBytes>;
using Key = std::array<unsigned char, kKeyBytes>;

Header build_header(const SendLimitSettings& s, const Key& key) {
  Header h{};
  std::copy(kMagic.begin(), kMagic.end(), h.begin());
  put32(h.data() + 8, kFormatVersion);
  put32(h.data() + 12, kHeaderBytes);
  put32(h.data() + 16, s.bucket_count);
  put32(h.data() + 20, s.slots_per_bucket);
  put32(h.data() + 24, kSlotBytes);
  std::copy(key.begin(), key.end(), h.begin() + kKeyOffset);
  const Digest sum = Sha256().update(h.data(), kHeaderSumOffset).finish();
  std::copy(sum.begin(), sum.end(), h.begin() + kHeaderSumOffset);
  return h;
}

std::expected<Key, std::string> parse_header(const SendLimitSettings& s,
                                             const Header& h,
                                             const std::string& path) {
  if (!std::equal(kMagic.begin(), kMagic.end(), h.begin()))
    return std::unexpected(corrupt(path, "not a state file: bad magic"));
  const Digest sum = Sha256().update(h.data(), kHeaderSumOffset).finish();
  if (!std::equal(sum.begin(), sum.end(), h.begin() + kHeaderSumOffset))
    return std::unexpected(corrupt(path, "header checksum mismatch"));
  if (get32(h.data() + 8) != kFormatVersion)
    return std::unexpected(corrupt(
        path, "format version " + std::to_string(get32(h.data() + 8)) +
                  ", this module reads version " +
                  std::to_string(kFormatVersion)));
  if (get32(h.data() + 12) != kHeaderBytes ||
      get32(h.data() + 16) != s.bucket_count ||
      get32(h.data() + 20) != s.slots_per_bucket ||
      get32(h.data() + 24) != kSlotBytes)
    return std::unexpected(corrupt(path, "a table of another size"));
  Key key;
  std::copy(h.begin() + kKeyOffset, h.begin() + kKeyOffset + kKeyBytes,
            key.begin());
  return key;
}

std::string random_key(Key& key) {
  std::size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = getrandom(key.data() + got, key.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "getrandom: " + error_text(errno);
    got += static_cast<std::size_t>(n);
  }
  return {};
}

// On btrfs an overwrite in place would still need new blocks (copy on
// write) unless the file is No_COW, a flag that only an empty file takes.
// Best effort: other filesystems do not know it.
void ask_for_no_cow(int fd) {
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) return;
  flags |= FS_NOCOW_FL;
  (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

// Gives a new file its blocks for good: posix_fallocate, then zeros over
// the whole table (so that no later write meets an unwritten extent whose
// conversion could need metadata blocks), the header last, then fsync.
std::string fill_new_file(const SendLimitSettings& s, int fd) {
  const std::uint64_t size = state_file_size(s);
  if (fchmod(fd, 0600) != 0) return "cannot chmod: " + error_text(errno);
  ask_for_no_cow(fd);
  if (const int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
      err != 0)
    return "cannot allocate " + std::to_string(size) +
           " bytes: " + error_text(err);
  static const std::array<unsigned char, 65536> zeros{};
  for (std::uint64_t off = kHeaderBytes; off < size; off += zeros.size()) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), size - off));
    if (!pwrite_all(fd, zeros.data(), n, static_cast<off_t>(off)))
      return "cannot write: " + error_text(errno);
  }
  Key key;
  if (std::string problem = random_key(key); !problem.empty()) return problem;
  const Header h = build_header(s, key);
  if (!pwrite_all(fd, h.data(), h.size(), 0))
    return "cannot write: " + error_text(errno);
  if (fsync(fd) != 0) return "cannot fsync: " + error_text(errno);
  return {};
}

constexpr long kCreateWaitFactor = 6;

// Creates state.v1 under an flock on the directory: built complete as
// state.v1.new, then linked into place, so that no process ever sees a
// half-made state.v1. Empty on success (or when another process made it).
std::string create_state_file(const SendLimitSettings& s, int dir,
                              const std::string& path) {
  // Making the file (8 MiB written and synced) happens once per host, and
  // may be slow on a busy machine: the logins that wait for it wait longer
  // than for an update.
  if (std::string problem = lock_exclusive(dir, s.lock_wait_ms * kCreateWaitFactor,
                                           "state directory " + s.state_dir);
      !problem.empty())
    return problem;
  struct stat st {};
  if (fstatat(dir, kStateFileName, &st, AT_SYMLINK_NOFOLLOW) == 0) return {};
  const std::string what = "state file " + path + ": cannot create: ";
  if (unlinkat(dir, kTempName, 0) != 0 && errno != ENOENT)
    return what + "cannot remove the stale " + kTempName + ": " +
           error_text(errno);
  const int fd = openat(dir, kTempName,
                        O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                            O_NOCTTY,
                        0600);
  if (fd < 0) return what + error_text(errno);
  FileDescriptor file(fd);
  std::string problem = fill_new_file(s, file.get());
  file.reset();
  if (problem.empty() &&
      linkat(dir, kTempName, dir, kStateFileName, 0) != 0 && errno != EEXIST)
    problem = "cannot link " + std::string(kTempName) + ": " + error_text(errno);
  unlinkat(dir, kTempName, 0);
  if (!problem.empty()) return what + problem;
  (void)fsync(dir);  // the new name is durable once the directory is
  return {};
}

// The checks on the open state file, before anything is read from it.
std::string check_state_file(const SendLimitSettings& s, int fd,
                             const std::string& path) {
  const std::string what = "state file " + path;
  struct stat st {};
  if (fstat(fd, &st) != 0) return what + ": cannot stat: " + error_text(errno);
  if (!S_ISREG(st.st_mode)) return what + ": is not a regular file";
  if (st.st_uid != s.owner)
    return what + ": must be owned by " + owner_text(s.owner) +
           " (it is owned by uid " + std::to_string(st.st_uid) + ")";
  if ((st.st_mode & 07077) != 0)
    return what + ": must have mode 0600 (mode is " + mode_text(st.st_mode) +
           "; run chmod 600 " + path + ")";
  const std::uint64_t want = state_file_size(s);
  if (static_cast<std::uint64_t>(st.st_size) != want)
    return corrupt(path, "its size is " + std::to_string(st.st_size) +
                             " bytes, not " + std::to_string(want));
  return {};
}

// The open, locked, checked state file. The lock goes first, then the
// writes are synced: the page cache already shows them to the next login,
// and a lock held across a sync would make 200 logins at once wait for 200
// syncs in a row.
struct Table {
  std::string path;
  FileDescriptor file;
  Key key{};
  mutable bool dirty = false;  // written since it was opened

  Table() = default;
  Table(Table&&) noexcept = default;
  Table& operator=(Table&&) noexcept = default;
  ~Table() {
    if (file.get() < 0) return;
    flock(file.get(), LOCK_UN);
    if (dirty) (void)fdatasync(file.get());
  }
};

enum class IfMissing { Create, Absent };

std::expected<FileDescriptor, std::string> openat_state(
    int dir, const std::string& path) {
  const int fd = openat(dir, kStateFileName,
                        O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd >= 0) return FileDescriptor(fd);
  const int err = errno;
  if (err == ELOOP)
    return std::unexpected("state file " + path +
                           ": is a symbolic link, which is refused");
  return std::unexpected("state file " + path + ": cannot open: " +
                         error_text(err));
}

// Opens state.v1; a missing one is created (Create) or nullopt (Absent).
std::expected<std::optional<FileDescriptor>, std::string> open_state_file(
    const SendLimitSettings& s, int dir, const std::string& path,
    IfMissing if_missing) {
  struct stat st {};
  if (fstatat(dir, kStateFileName, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
      errno == ENOENT) {
    if (if_missing == IfMissing::Absent) return std::nullopt;
    if (std::string problem = create_state_file(s, dir, path);
        !problem.empty())
      return std::unexpected(problem);
  }
  auto file = openat_state(dir, path);
  if (!file) return std::unexpected(file.error());
  return std::move(*file);
}

// Opens, checks and locks state.v1. With IfMissing::Absent a missing
// directory or file is nullopt and nothing is created; with Create they
// are created, and the result always holds a table.
std::expected<std::optional<Table>, std::string> open_table(
    const SendLimitSettings& s, IfMissing if_missing) {
  if (std::string problem = check_settings(s); !problem.empty())
    return std::unexpected(problem);
  Table t;
  t.path = s.state_dir + "/" + kStateFileName;
  struct stat st {};
  if (if_missing == IfMissing::Absent &&
      lstat(s.state_dir.c_str(), &st) != 0 && errno == ENOENT)
    return std::nullopt;
  auto dir = open_state_dir(s);
  if (!dir) return std::unexpected(dir.error());
  auto file = open_state_file(s, dir->get(), t.path, if_missing);
  if (!file) return std::unexpected(file.error());
  if (!*file) return std::nullopt;
  t.file = std::move(**file);
  if (std::string problem = check_state_file(s, t.file.get(), t.path);
      !problem.empty())
    return std::unexpected(problem);
  if (std::string problem = lock_exclusive(t.file.get(), s.lock_wait_ms,
                                           "state file " + t.path);
      !problem.empty())
    return std::unexpected(problem);
  Header h;
  if (!pread_all(t.file.get(), h.data(), h.size(), 0))
    return std::unexpected("state file " + t.path + ": read error: " +
                           error_text(errno));
  auto key = parse_header(s, h, t.path);
  if (!key) return std::unexpected(key.error());
  t.key = *key;
  return t;
}

std::string_view key_view(const Table& t) {
  return {reinterpret_cast<const char*>(t.key.data()), t.key.size()};
}

// Where an account's entries may live: its tag and its two buckets.
struct Account {
  Tag tag{};
  std::array<std::uint32_t, 2> bucket{};
};

Account account_of(const SendLimitSettings& s, const Table& t,
                   std::string_view name) {
  const Digest d = hmac_sha256(key_view(t), {"account", {"\0", 1}, name});
  Account a;
  std::copy(d.begin(), d.begin() + kTagBytes, a.tag.begin());
  a.bucket[0] = get32(d.data() + 16) % s.bucket_count;
  a.bucket[1] = get32(d.data() + 20) % s.bucket_count;
  if (a.bucket[1] == a.bucket[0])  // two choices, unless there is one
    a.bucket[1] = (a.bucket[0] + 1) % s.bucket_count;
  return a;
}

Tag address_of(const Table& t, std::string_view address) {
  const Digest d = hmac_sha256(key_view(t), {"address", {"\0", 1}, address});
  Tag tag;
  std::copy(d.begin(), d.begin() + kTagBytes, tag.begin());
  return tag;
}

// The slots of the account's buckets: the first bucket's, then the
// second's (if it is another one).
struct Candidates {
  std::vector<std::uint64_t> index;  // slot number in the table
  std::vector<Slot> slot;
  std::size_t per_bucket = 0;
};

std::expected<Candidates, std::string> read_candidates(
    const SendLimitSettings& s, const Table& t, const Account& a) {
  Candidates c;
  c.per_bucket = s.slots_per_bucket;
  std::vector<unsigned char> bytes(c.per_bucket * kSlotBytes);
  const std::size_t buckets = a.bucket[0] == a.bucket[1] ? 1 : 2;
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::uint64_t first = std::uint64_t{a.bucket[b]} * c.per_bucket;
    if (!pread_all(t.file.get(), bytes.data(), bytes.size(),
                   static_cast<off_t>(kHeaderBytes + first * kSlotBytes)))
      return std::unexpected("state file " + t.path + ": read error: " +
                             error_text(errno));
    for (std::size_t i = 0; i < c.per_bucket; ++i) {
      c.index.push_back(first + i);
      c.slot.push_back(decode_slot(bytes.data() + i * kSlotBytes));
    }
  }
  return c;
}

std::string write_slot(const Table& t, std::uint64_t index, const Slot& slot) {
  const SlotBytes b = encode_slot(slot);
  if (!pwrite_all(t.file.get(), b.data(), b.size(),
                  static_cast<off_t>(kHeaderBytes + index * kSlotBytes)))
    return "state file " + t.path + ": cannot write: " + error_text(errno);
  t.dirty = true;  // synced once the lock is given back (~Table)
  return {};
}

bool owned_by(const Slot& s, Kind kind, const Tag& account) {
  return !s.damaged && s.kind == kind && s.account == account;
}

std::optional<std::size_t> find_send(const Candidates& c, const Tag& account) {
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (owned_by(c.slot[i], Kind::Send, account)) return i;
  return std::nullopt;
}

std::optional<std::size_t> find_grace_entry(const Candidates& c,
                                            const Tag& account,
                                            const Tag& address) {
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (owned_by(c.slot[i], Kind::Grace, account) &&
        c.slot[i].address == address)
      return i;
  return std::nullopt;
}

// A slot for a new entry: a free one in the emptier bucket; else one
// taken back: an expired entry, then the oldest grace entry. Never a send
// record with a send inside the window, never a damaged slot.
std::optional<std::size_t> place(const Candidates& c,
                                 const SendLimitSettings& s, std::int64_t now) {
  std::optional<std::size_t> best;
  std::size_t best_free = 0;
  for (std::size_t start = 0; start < c.slot.size(); start += c.per_bucket) {
    std::size_t n_free = 0;
    std::optional<std::size_t> first;
    for (std::size_t i = start; i < start + c.per_bucket; ++i)
      if (!c.slot[i].damaged && c.slot[i].kind == Kind::Free) {
        ++n_free;
        if (!first) first = i;
      }
    if (n_free > best_free) {
      best_free = n_free;
      best = first;
    }
  }
  if (best) return best;
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (expired(c.slot[i], s, now)) return i;
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (!c.slot[i].damaged && c.slot[i].kind == Kind::Grace &&
        (!best || c.slot[i].created < c.slot[*best].created))
      best = i;
  return best;
}

std::string table_full(const Table& t, const Candidates& c) {
  const auto damaged = std::count_if(c.slot.begin(), c.slot.end(),
                                     [](const Slot& s) { return s.damaged; });
  std::string text = "state file " + t.path +
                     ": the state table is full: the " +
                     std::to_string(c.slot.size()) +
                     " slots this account can use hold sends still inside "
                     "their window";
  if (damaged > 0)
    text += " or damaged entries (" + std::to_string(damaged) + " damaged)";
  return text + "; no code is sent until one of them expires";
}

void limit_reached(SendReservation& r, const std::vector<std::uint32_t>& kept,
                   const SendLimitSettings& s, std::int64_t now) {
  r.decision = SendDecision::LimitReached;
  // The oldest entry that must expire for a start to be allowed again.
  const std::int64_t frees = kept[kept.size() - s.count];
  r.retry_in_s = std::max<std::int64_t>(1, frees + s.window_s - now);
  r.detail = "send limit reached: " + std::to_string(r.used) +
             " codes sent in the last " + std::to_string(s.window_s) +
             " s (send_limit.count = " + std::to_string(s.count) +
             "); the next is allowed in " + std::to_string(r.retry_in_s) +
             " s";
}

std::vector<std::uint32_t> counting(const std::vector<std::uint32_t>& stamps,
                                    std::int64_t now, long window_s) {
  std::vector<std::uint32_t> kept;
  for (std::uint32_t t : stamps)
    if (counts(t, now, window_s)) kept.push_back(t);
  std::sort(kept.begin(), kept.end());
  return kept;
}

Slot send_record(const Tag& account, std::vector<std::uint32_t> stamps) {
  Slot s;
  s.kind = Kind::Send;
  s.account = account;
  s.stamps = std::move(stamps);
  return s;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  return hex(Sha256().update(data).finish());
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  return hex(hmac_sha256(key, {data}));
}

std::int64_t realtime_now() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec);
}

SendLimitSettings send_limit_settings(const StateSettings& state) {
  SendLimitSettings s;
  s.state_dir = state.state_dir;
  s.count = state.send_limit_count;
  s.window_s = state.send_limit_window_s;
  return s;
}

std::uint64_t state_file_size(const SendLimitSettings& settings) {
  return kHeaderBytes + slot_count(settings) * kSlotBytes;
}

SendReservation reserve_send(const SendLimitSettings& settings,
                             std::string_view user, std::int64_t now) {
  SendReservation r;
  if (!fits_stamp(now)) {
    r.detail = clock_problem(now);
    return r;
  }
  auto table = open_table(settings, IfMissing::Create);
  if (!table) {
    r.detail = table.error();
    return r;
  }
  const Table& t = **table;
  const Account a = account_of(settings, t, user);
  auto c = read_candidates(settings, t, a);
  if (!c) {
    r.detail = c.error();
    return r;
  }
  std::optional<std::size_t> where = find_send(*c, a.tag);
  std::vector<std::uint32_t> kept;
  if (where) kept = counting(c->slot[*where].stamps, now, settings.window_s);
  r.used = static_cast<int>(kept.size());
  if (r.used >= settings.count) {
    limit_reached(r, kept, settings, now);
    return r;
  }
  if (!where) where = place(*c, settings, now);
  if (!where) {
    r.detail = table_full(t, *c);
    return r;
  }
  kept.push_back(static_cast<std::uint32_t>(now));
  std::sort(kept.begin(), kept.end());
  r.detail = write_slot(t, c->index[*where], send_record(a.tag, kept));
  if (r.detail.empty()) {
    r.decision = SendDecision::Allowed;
    r.stamp = now;
  }
  return r;
}

std::string release_send(const SendLimitSettings& settings,
                         std::string_view user, std::int64_t stamp,
                         std::int64_t now) {
  auto table = open_table(settings, IfMissing::Absent);
  if (!table) return table.error();
  if (!*table || !fits_stamp(stamp)) return {};  // nothing recorded
  const Table& t = **table;
  const Account a = account_of(settings, t, user);
  auto c = read_candidates(settings, t, a);
  if (!c) return c.error();
  const std::optional<std::size_t> where = find_send(*c, a.tag);
  if (!where) return {};
  std::vector<std::uint32_t> stamps = c->slot[*where].stamps;
  const auto it = std::find(stamps.begin(), stamps.end(),
                            static_cast<std::uint32_t>(stamp));
  if (it == stamps.end()) return {};  // expired or pruned: nothing to give back
  stamps.erase(it);
  return write_slot(t, c->index[*where],
                    send_record(a.tag, counting(stamps, now, settings.window_s)));
}

std::string record_grace(const SendLimitSettings& settings,
                         std::string_view account, std::string_view address,
                         std::int64_t now, std::int64_t until) {
  if (!fits_stamp(now)) return clock_problem(now);
  if (!fits_stamp(until)) return clock_problem(until);
  if (until <= now) return "a grace entry must expire after it is made";
  auto table = open_table(settings, IfMissing::Create);
  if (!table) return table.error();
  const Table& t = **table;
  const Account a = account_of(settings, t, account);
  const Tag where_from = address_of(t, address);
  auto c = read_candidates(settings, t, a);
  if (!c) return c.error();
  std::optional<std::size_t> where = find_grace_entry(*c, a.tag, where_from);
  if (!where) where = place(*c, settings, now);
  if (!where) return table_full(t, *c);
  Slot entry;
  entry.kind = Kind::Grace;
  entry.account = a.tag;
  entry.address = where_from;
  entry.created = static_cast<std::uint32_t>(now);
  entry.until = static_cast<std::uint32_t>(until);
  return write_slot(t, c->index[*where], entry);
}

std::expected<std::optional<std::int64_t>, std::string> find_grace(
    const SendLimitSettings& settings, std::string_view account,
    std::string_view address, std::int64_t now) {
  auto table = open_table(settings, IfMissing::Absent);
  if (!table) return std::unexpected(table.error());
  if (!*table) return std::nullopt;
  const Table& t = **table;
  const Account a = account_of(settings, t, account);
  auto c = read_candidates(settings, t, a);
  if (!c) return std::unexpected(c.error());
  const std::optional<std::size_t> where =
      find_grace_entry(*c, a.tag, address_of(t, address));
  if (!where || !grace_valid(c->slot[*where], now)) return std::nullopt;
  return std::int64_t{c->slot[*where].until};
}

std::string reset_account(const SendLimitSettings& settings,
                          std::string_view account) {
  auto table = open_table(settings, IfMissing::Absent);
  if (!table) return table.error();
  if (!*table) return {};
  const Table& t = **table;
  const Account a = account_of(settings, t, account);
  auto c = read_candidates(settings, t, a);
  if (!c) return c.error();
  for (std::size_t i = 0; i < c->slot.size(); ++i) {
    const Slot& s = c->slot[i];
    if (!owned_by(s, Kind::Send, a.tag) && !owned_by(s, Kind::Grace, a.tag))
      continue;
    if (std::string problem = write_slot(t, c->index[i], Slot{});
        !problem.empty())
      return problem;
  }
  return {};
}

std::expected<std::vector<std::int64_t>, std::string> recorded_sends(
    const SendLimitSettings& settings, std::string_view account) {
  auto table = open_table(settings, IfMissing::Absent);
  if (!table) return std::unexpected(table.error());
  std::vector<std::int64_t> out;
  if (!*table) return out;
  const Table& t = **table;
  const Account a = account_of(settings, t, account);
  auto c = read_candidates(settings, t, a);
  if (!c) return std::unexpected(c.error());
  if (const auto where = find_send(*c, a.tag))
    for (std::uint32_t stamp : c->slot[*where].stamps) out.push_back(stamp);
  std::sort(out.begin(), out.end());
  return out;
}

std::string ensure_state_file(const SendLimitSettings& settings) {
  auto table = open_table(settings, IfMissing::Create);
  return table ? std::string() : table.error();
}

}  // namespace ptv
