// state.v1 opened, checked, created and locked (state/locked_file.hpp).
#include "state/locked_file.hpp"

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
#include <utility>

namespace ptv::statefile {

namespace {

constexpr char kTempName[] = "state.v1.new";
// Making the file (8 MiB written and synced) happens once per host, and
// may be slow on a busy machine: the logins that wait for it wait longer
// than for an update.
constexpr long kCreateWaitFactor = 6;

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

// ------------------------------------------------------ reads and writes

// Repeats pread or pwrite until all of size is done; false with errno set
// (EIO when the file is shorter than it was).
template <typename Byte, typename Io>
bool all_at(Io io, int fd, Byte* data, std::size_t size, off_t offset) {
  while (size > 0) {
    const ssize_t n = io(fd, data, size, offset);
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

bool pwrite_all(int fd, const unsigned char* data, std::size_t size,
                off_t offset) {
  return all_at([](int f, const unsigned char* d, std::size_t n,
                   off_t o) { return pwrite(f, d, n, o); },
                fd, data, size, offset);
}

bool pread_all(int fd, unsigned char* data, std::size_t size, off_t offset) {
  return all_at([](int f, unsigned char* d, std::size_t n,
                   off_t o) { return pread(f, d, n, o); },
                fd, data, size, offset);
}

// --------------------------------------------------------------- locking

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
// not hang a login forever behind a stuck process).
std::expected<void, StateError> lock_exclusive(int fd, long wait_ms,
                                               const std::string& what) {
  const long deadline = monotonic_ms() + wait_ms;
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return {};
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK)
      return state_error(what + ": cannot lock: " + error_text(err));
    if (monotonic_ms() >= deadline)
      return state_error(what + ": still locked by another login after " +
                         std::to_string(wait_ms) + " ms");
    sleep_ms(5);
  }
}

// ------------------------------------------------------------ the checks

// fstat of an open directory or file, which must be of the given type
// (S_IFDIR, S_IFREG) and have the given owner.
std::expected<struct stat, StateError> stat_checked(int fd, mode_t type,
                                                    const char* not_type,
                                                    uid_t owner,
                                                    const std::string& what) {
  struct stat st {};
  if (fstat(fd, &st) != 0)
    return state_error(what + ": cannot stat: " + error_text(errno));
  if ((st.st_mode & S_IFMT) != type) return state_error(what + ": " + not_type);
  if (st.st_uid != owner)
    return state_error(what + ": must be owned by " + owner_text(owner) +
                       " (it is owned by uid " + std::to_string(st.st_uid) +
                       ")");
  return st;
}

// The state directory: created (0700) when missing, then opened without
// following a symbolic link.
std::expected<FileDescriptor, StateError> make_and_open_dir(
    const SendLimitSettings& s, const std::string& what) {
  if (s.state_dir.empty() || s.state_dir.front() != '/')
    return state_error(what + ": not an absolute path");
  if (mkdir(s.state_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return state_error(what + ": cannot create: " + error_text(errno));
  const int fd = open(s.state_dir.c_str(),
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return FileDescriptor(fd);
  const int err = errno;
  struct stat st {};
  if (lstat(s.state_dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    return state_error(what + ": is a symbolic link, which is refused");
  if (err == ENOTDIR) return state_error(what + ": is not a directory");
  return state_error(what + ": cannot open: " + error_text(err));
}

// The state directory, checked on the open descriptor.
std::expected<FileDescriptor, StateError> open_state_dir(
    const SendLimitSettings& s) {
  const std::string what = "state directory " + s.state_dir;
  auto dir = make_and_open_dir(s, what);
  if (!dir) return dir;
  const auto st =
      stat_checked(dir->get(), S_IFDIR, "is not a directory", s.owner, what);
  if (!st) return std::unexpected(st.error());
  if ((st->st_mode & 022) != 0)
    return state_error(what + ": must not be writable by group or others "
                              "(mode is " + mode_text(st->st_mode) +
                       "; run chmod 700 " + s.state_dir + ")");
  return dir;
}

// The checks on the open state file, before anything is read from it.
std::expected<void, StateError> check_state_file(const SendLimitSettings& s,
                                                 int fd,
                                                 const std::string& path) {
  const std::string what = "state file " + path;
  const auto st =
      stat_checked(fd, S_IFREG, "is not a regular file", s.owner, what);
  if (!st) return std::unexpected(st.error());
  if ((st->st_mode & 07077) != 0)
    return state_error(what + ": must have mode 0600 (mode is " +
                       mode_text(st->st_mode) + "; run chmod 600 " + path +
                       ")");
  const std::uint64_t want = state_file_size(s);
  if (static_cast<std::uint64_t>(st->st_size) != want)
    return state_error(corrupt(path, "its size is " +
                                         std::to_string(st->st_size) +
                                         " bytes, not " + std::to_string(want)));
  return {};
}

// -------------------------------------------------------------- creation

std::expected<Key, StateError> random_key() {
  Key key;
  std::size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = getrandom(key.data() + got, key.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return state_error("getrandom: " + error_text(errno));
    got += static_cast<std::size_t>(n);
  }
  return key;
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

// Zeros over the whole table, so that no later write meets an unwritten
// extent whose conversion could need metadata blocks.
std::expected<void, StateError> write_zeros(int fd, std::uint64_t size) {
  static const std::array<unsigned char, 65536> zeros{};
  for (std::uint64_t off = kHeaderBytes; off < size; off += zeros.size()) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), size - off));
    if (!pwrite_all(fd, zeros.data(), n, static_cast<off_t>(off)))
      return state_error("cannot write: " + error_text(errno));
  }
  return {};
}

// The header with a new key, written last, then the whole file synced.
std::expected<void, StateError> write_header(const SendLimitSettings& s,
                                             int fd) {
  const auto key = random_key();
  if (!key) return std::unexpected(key.error());
  const Header h = build_header(s, *key);
  if (!pwrite_all(fd, h.data(), h.size(), 0))
    return state_error("cannot write: " + error_text(errno));
  if (fsync(fd) != 0) return state_error("cannot fsync: " + error_text(errno));
  return {};
}

// Gives a new file its blocks for good: posix_fallocate, then zeros over
// the whole table, the header last, then fsync.
std::expected<void, StateError> fill_new_file(const SendLimitSettings& s,
                                              int fd) {
  const std::uint64_t size = state_file_size(s);
  if (fchmod(fd, 0600) != 0)
    return state_error("cannot chmod: " + error_text(errno));
  ask_for_no_cow(fd);
  if (const int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
      err != 0)
    return state_error("cannot allocate " + std::to_string(size) +
                       " bytes: " + error_text(err));
  if (auto zeroed = write_zeros(fd, size); !zeroed) return zeroed;
  return write_header(s, fd);
}

// Builds the file complete as state.v1.new, then links it into place as
// state.v1; the temporary name is gone afterwards in every case.
std::expected<void, StateError> build_and_link(const SendLimitSettings& s,
                                               int dir) {
  if (unlinkat(dir, kTempName, 0) != 0 && errno != ENOENT)
    return state_error(std::string("cannot remove the stale ") + kTempName +
                       ": " + error_text(errno));
  const int fd = openat(dir, kTempName,
                        O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                            O_NOCTTY,
                        0600);
  if (fd < 0) return state_error(error_text(errno));
  FileDescriptor file(fd);
  auto built = fill_new_file(s, file.get());
  file.reset();
  if (built && linkat(dir, kTempName, dir, kStateFileName, 0) != 0 &&
      errno != EEXIST)
    built = state_error("cannot link " + std::string(kTempName) + ": " +
                        error_text(errno));
  unlinkat(dir, kTempName, 0);
  return built;
}

// Creates state.v1 under an flock on the directory, so that no process
// ever sees a half-made state.v1. Succeeds too when another process made
// it meanwhile.
std::expected<void, StateError> create_state_file(const SendLimitSettings& s,
                                                  int dir,
                                                  const std::string& path) {
  if (auto locked = lock_exclusive(dir, s.lock_wait_ms * kCreateWaitFactor,
                                   "state directory " + s.state_dir);
      !locked)
    return locked;
  struct stat st {};
  if (fstatat(dir, kStateFileName, &st, AT_SYMLINK_NOFOLLOW) == 0) return {};
  if (auto built = build_and_link(s, dir); !built)
    return state_error("state file " + path + ": cannot create: " +
                       built.error().detail);
  (void)fsync(dir);  // the new name is durable once the directory is
  return {};
}

// ------------------------------------------------------------ the table

std::expected<FileDescriptor, StateError> openat_state(
    int dir, const std::string& path) {
  const int fd = openat(dir, kStateFileName,
                        O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd >= 0) return FileDescriptor(fd);
  const int err = errno;
  if (err == ELOOP)
    return state_error("state file " + path +
                       ": is a symbolic link, which is refused");
  return state_error("state file " + path + ": cannot open: " +
                     error_text(err));
}

// Opens state.v1; a missing one is created (Create) or nullopt (Absent).
std::expected<std::optional<FileDescriptor>, StateError> open_state_file(
    const SendLimitSettings& s, int dir, const std::string& path,
    IfMissing if_missing) {
  struct stat st {};
  if (fstatat(dir, kStateFileName, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
      errno == ENOENT) {
    if (if_missing == IfMissing::Absent) return std::nullopt;
    if (auto created = create_state_file(s, dir, path); !created)
      return std::unexpected(created.error());
  }
  auto file = openat_state(dir, path);
  if (!file) return std::unexpected(file.error());
  return std::move(*file);
}

// The opened state file checked, locked, and its header read.
std::expected<std::optional<Table>, StateError> lock_table(
    const SendLimitSettings& s, std::string path, FileDescriptor file) {
  Table t;
  t.path = std::move(path);
  t.file = std::move(file);
  if (auto checked = check_state_file(s, t.file.get(), t.path); !checked)
    return std::unexpected(checked.error());
  if (auto locked = lock_exclusive(t.file.get(), s.lock_wait_ms,
                                   "state file " + t.path);
      !locked)
    return std::unexpected(locked.error());
  Header h;
  if (auto read = read_at(t, 0, h.data(), h.size()); !read)
    return std::unexpected(read.error());
  const auto key = parse_header(s, h, t.path);
  if (!key) return std::unexpected(key.error());
  t.key = *key;
  return t;
}

}  // namespace

Table::~Table() {
  if (file.get() < 0) return;
  flock(file.get(), LOCK_UN);
  if (dirty) (void)fdatasync(file.get());
}

std::expected<std::optional<Table>, StateError> open_table(
    const SendLimitSettings& s, IfMissing if_missing) {
  if (auto valid = check_settings(s); !valid)
    return std::unexpected(valid.error());
  std::string path = s.state_dir + "/" + kStateFileName;
  struct stat st {};
  if (if_missing == IfMissing::Absent &&
      lstat(s.state_dir.c_str(), &st) != 0 && errno == ENOENT)
    return std::nullopt;
  auto dir = open_state_dir(s);
  if (!dir) return std::unexpected(dir.error());
  auto file = open_state_file(s, dir->get(), path, if_missing);
  if (!file) return std::unexpected(file.error());
  if (!*file) return std::nullopt;
  // The directory stays open (and any creation lock on it held) until the
  // file is locked.
  return lock_table(s, std::move(path), std::move(**file));
}

std::expected<void, StateError> read_at(const Table& t, std::uint64_t offset,
                                        unsigned char* data, std::size_t size) {
  if (!pread_all(t.file.get(), data, size, static_cast<off_t>(offset)))
    return state_error("state file " + t.path + ": read error: " +
                       error_text(errno));
  return {};
}

std::expected<void, StateError> write_at(const Table& t, std::uint64_t offset,
                                         const unsigned char* data,
                                         std::size_t size) {
  if (!pwrite_all(t.file.get(), data, size, static_cast<off_t>(offset)))
    return state_error("state file " + t.path + ": cannot write: " +
                       error_text(errno));
  t.dirty = true;  // synced once the lock is given back (~Table)
  return {};
}

}  // namespace ptv::statefile
