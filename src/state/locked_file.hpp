// state.v1 opened, checked and locked; made complete first when missing.
//
// The directory and the file are opened without following symbolic links
// and checked on the open descriptors (owner, mode, size, header) before
// anything is read; every operation then holds an exclusive flock on the
// file, whose inode never changes. Creation holds one on the directory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "core/send_gate.hpp"
#include "state/layout.hpp"
#include "state/send_limit.hpp"
#include "util/file_descriptor.hpp"

namespace ptv::statefile {

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
  ~Table();
};

enum class IfMissing { Create, Absent };

// Opens, checks and locks state.v1. With IfMissing::Absent a missing
// directory or file is nullopt and nothing is created; with Create they
// are created, and the result always holds a table.
std::expected<std::optional<Table>, StateError> open_table(
    const SendLimitSettings& s, IfMissing if_missing);

// Reads size bytes at offset in the table's file.
std::expected<void, StateError> read_at(const Table& t, std::uint64_t offset,
                                        unsigned char* data, std::size_t size);

// Overwrites size bytes at offset in place; synced once the lock is given
// back.
std::expected<void, StateError> write_at(const Table& t, std::uint64_t offset,
                                         const unsigned char* data,
                                         std::size_t size);

}  // namespace ptv::statefile
