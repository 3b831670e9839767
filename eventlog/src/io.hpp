#pragma once
// Thin POSIX file helpers: every failure becomes an errc::io_error naming the file.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog::io {

class file {
public:
    file() = default;
    ~file();
    file(file&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
    file& operator=(file&& o) noexcept;
    file(const file&) = delete;
    file& operator=(const file&) = delete;

    static result<file> open_read(const std::filesystem::path& p);
    static result<file> open_write(const std::filesystem::path& p, bool create);

    bool is_open() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    const std::filesystem::path& path() const { return path_; }

    result<std::uint64_t> size() const;
    // Reads up to n bytes at offset; returns how many were read (short only at end of file).
    result<std::size_t> pread(void* buf, std::size_t n, std::uint64_t offset) const;
    result<void> pwrite_all(std::string_view data, std::uint64_t offset) const;
    result<void> datasync() const;
    result<void> truncate(std::uint64_t size) const;
    void close();

private:
    int fd_ = -1;
    std::filesystem::path path_;
};

result<void> fsync_dir(const std::filesystem::path& dir);
std::string errno_text(int err);
// Writes `content` to `path` atomically: temp file, fdatasync, rename, directory fsync.
result<void> write_atomically(const std::filesystem::path& path, std::string_view content,
                              bool sync);
// The same with the temp file's contents written by `fill`, which answers whether to keep
// them: false (or an error) removes the temp file and leaves `path` as it was. Answers
// whether `path` was written.
result<bool> write_atomically(const std::filesystem::path& path,
                              const std::function<result<bool>(const file&)>& fill, bool sync);

}  // namespace scimsync::eventlog::io
