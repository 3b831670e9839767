#include "io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scimsync::eventlog::io {

std::string errno_text(int err) {
    return std::strerror(err);
}

namespace {
std::unexpected<error> io_fail(const std::string& what, const std::filesystem::path& p, int err) {
    return std::unexpected(error{errc::io_error, what + " " + p.string() + ": " + errno_text(err)});
}
}  // namespace

file::~file() {
    close();
}

file& file::operator=(file&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.fd_;
        path_ = std::move(o.path_);
        o.fd_ = -1;
    }
    return *this;
}

void file::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

result<file> file::open_read(const std::filesystem::path& p) {
    file f;
    f.fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd_ < 0) return io_fail("cannot open", p, errno);
    f.path_ = p;
    return f;
}

result<file> file::open_write(const std::filesystem::path& p, bool create) {
    file f;
    f.fd_ = ::open(p.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0640);
    if (f.fd_ < 0) return io_fail(create ? "cannot create" : "cannot open for writing", p, errno);
    f.path_ = p;
    return f;
}

result<std::uint64_t> file::size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return io_fail("cannot stat", path_, errno);
    return std::uint64_t(st.st_size);
}

result<std::size_t> file::pread(void* buf, std::size_t n, std::uint64_t offset) const {
    std::size_t done = 0;
    while (done < n) {
        ssize_t r = ::pread(fd_, static_cast<char*>(buf) + done, n - done, off_t(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return io_fail("cannot read", path_, errno);
        }
        if (r == 0) break;
        done += std::size_t(r);
    }
    return done;
}

result<void> file::pwrite_all(std::string_view data, std::uint64_t offset) const {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t r = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return io_fail("cannot write", path_, errno);
        }
        done += std::size_t(r);
    }
    return {};
}

result<void> file::datasync() const {
    if (::fdatasync(fd_) != 0) return io_fail("fdatasync failed on", path_, errno);
    return {};
}

result<void> file::truncate(std::uint64_t size) const {
    if (::ftruncate(fd_, off_t(size)) != 0) return io_fail("cannot truncate", path_, errno);
    return {};
}

result<void> fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_fail("cannot open directory", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return io_fail("cannot fsync directory", dir, err);
    return {};
}

result<void> write_atomically(const std::filesystem::path& path, std::string_view content,
                              bool sync) {
    auto r = write_atomically(
        path,
        [&](const file& f) -> result<bool> {
            if (auto w = f.pwrite_all(content, 0); !w) return std::unexpected(w.error());
            return true;
        },
        sync);
    if (!r) return std::unexpected(r.error());
    return {};
}

result<bool> write_atomically(const std::filesystem::path& path,
                              const std::function<result<bool>(const file&)>& fill, bool sync) {
    auto tmp = path;
    tmp += ".tmp";
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    auto f = file::open_write(tmp, true);
    if (!f) return std::unexpected(f.error());
    auto keep = fill(*f);
    if (keep && *keep && sync) {
        if (auto r = f->datasync(); !r) keep = std::unexpected(r.error());
    }
    f->close();
    if (!keep || !*keep) {
        std::filesystem::remove(tmp, ec);
        return keep;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return io_fail("cannot rename onto", path, errno);
    if (sync) {
        if (auto r = fsync_dir(path.parent_path()); !r) return std::unexpected(r.error());
    }
    return true;
}

}  // namespace scimsync::eventlog::io
