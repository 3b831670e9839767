// The Debian package as an operator receives it: `cpack -G DEB` in this build tree, then the
// .deb taken apart with dpkg-deb (no root, no dpkg database): its control fields and maintainer
// scripts, every file where Debian and systemd look for it, man pages that groff renders
// without a warning, and the packaged binaries themselves running on the packaged example
// configuration.

#include <catch2/catch.hpp>
#include <csignal>
#include <regex>
#include <string>

#include "daemon_process.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

process_output sh(const std::string& script, std::chrono::milliseconds timeout = 60s) {
    return run_process({"/bin/sh", "-c", script}, timeout);
}

std::string quoted(const fs::path& p) {
    return "'" + p.string() + "'";
}

}  // namespace

TEST_CASE(
    "cpack makes a .deb with the binaries, unit, sysusers/tmpfiles snippets, example "
    "config and man pages, and its scimsyncctl --version runs",
    "[integration][packaging]") {
    temp_dir dir("scimsync-deb");
    const auto out = dir.path() / "out";
    auto made =
        run_process({SCIMSYNC_CPACK, "-G", "DEB", "--config",
                     std::string(SCIMSYNC_BINARY_DIR) + "/CPackConfig.cmake", "-B", out.string()},
                    300s);
    INFO(made.out + made.err);
    REQUIRE(made.code() == 0);
    const auto deb = out / ("scimsync_" SCIMSYNC_VERSION "_amd64.deb");
    REQUIRE(fs::exists(deb));

    // Control fields: the name and version, and Depends worked out from the linked libraries.
    auto field = [&](const std::string& name) {
        auto r = run_process({"/usr/bin/dpkg-deb", "--field", deb.string(), name});
        REQUIRE(r.code() == 0);
        return r.out.substr(0, r.out.find_last_not_of('\n') + 1);
    };
    CHECK(field("Package") == "scimsync");
    CHECK(field("Version") == SCIMSYNC_VERSION);
    CHECK(field("Section") == "admin");
    const std::string depends = field("Depends");
    for (const char* lib : {"systemd", "libldap", "librdkafka", "libssl3", "libsystemd0"})
        CHECK_THAT(depends, Catch::Contains(lib));

    // Maintainer scripts: present, executable, valid shell.
    const auto control = dir.path() / "control";
    REQUIRE(
        run_process({"/usr/bin/dpkg-deb", "--control", deb.string(), control.string()}).code() ==
        0);
    for (const char* script : {"postinst", "prerm", "postrm"}) {
        INFO(script);
        const auto p = control / script;
        REQUIRE(fs::exists(p));
        CHECK((fs::status(p).permissions() & fs::perms::owner_exec) != fs::perms::none);
        CHECK(sh("/bin/sh -n " + quoted(p)).code() == 0);
    }

    // Every file in place, owned by root in the archive.
    auto listing = run_process({"/usr/bin/dpkg-deb", "--contents", deb.string()});
    REQUIRE(listing.code() == 0);
    CHECK(listing.out.find("scimsync/scimsync") == std::string::npos);  // no uid leaks in
    const auto root = dir.path() / "root";
    REQUIRE(run_process({"/usr/bin/dpkg-deb", "--extract", deb.string(), root.string()}).code() ==
            0);
    for (const char* file :
         {"usr/bin/scimsyncd", "usr/bin/scimsyncctl", "usr/lib/systemd/system/scimsyncd.service",
          "usr/lib/sysusers.d/scimsync.conf", "usr/lib/tmpfiles.d/scimsync.conf",
          "usr/share/doc/scimsync/examples/scimsyncd.toml",
          "usr/share/doc/scimsync/configuration.md", "usr/share/man/man8/scimsyncd.8.gz",
          "usr/share/man/man1/scimsyncctl.1.gz"}) {
        INFO(file);
        CHECK(fs::is_regular_file(root / file));
    }
    CHECK(read_file(root / "usr/lib/systemd/system/scimsyncd.service") ==
          read_file(fs::path(SCIMSYNC_SOURCE_DIR) / "systemd/scimsyncd.service"));
    CHECK_THAT(read_file(root / "usr/lib/sysusers.d/scimsync.conf"), Catch::Contains("u scimsync"));

    // The man pages render cleanly (groff -ww: every warning) and carry this version.
    for (const char* page : {"man8/scimsyncd.8.gz", "man1/scimsyncctl.1.gz"}) {
        INFO(page);
        auto r =
            sh("gzip -dc " + quoted(root / "usr/share/man" / page) + " | groff -man -Tutf8 -ww -z");
        CHECK(r.code() == 0);
        CHECK(r.err.empty());
        auto text = sh("gzip -dc " + quoted(root / "usr/share/man" / page) +
                       " | groff -man -Tascii -P-cbou");
        CHECK_THAT(text.out, Catch::Contains("NAME") && Catch::Contains("SYNOPSIS") &&
                                 Catch::Contains("scimsync " SCIMSYNC_VERSION));
    }

    // The packaged binaries run.
    auto version = run_process({(root / "usr/bin/scimsyncctl").string(), "--version"});
    CHECK(version.code() == 0);
    CHECK(version.out == "scimsyncctl " SCIMSYNC_VERSION "\n");
    version = run_process({(root / "usr/bin/scimsyncd").string(), "--version"});
    CHECK(version.code() == 0);
    CHECK_THAT(version.out, Catch::Contains(SCIMSYNC_VERSION));

    // And serve on the packaged example configuration (every key at its default), with the
    // paths that belong to systemd moved into the temp dir.
    const auto data = dir.path() / "data";
    const auto socket = dir.path() / "admin.sock";
    child_process daemon({(root / "usr/bin/scimsyncd").string(), "--config",
                          (root / "usr/share/doc/scimsync/examples/scimsyncd.toml").string(),
                          "--data-dir", data.string(), "--admin-socket", socket.string(),
                          "--listen", "127.0.0.1:0", "--durability", "none"});
    const auto line = daemon.read_line(30s);
    INFO(daemon.err());
    REQUIRE(line.has_value());
    REQUIRE_THAT(*line, Catch::StartsWith("listening on http://127.0.0.1:"));
    auto status = run_process(
        {(root / "usr/bin/scimsyncctl").string(), "--socket", socket.string(), "status"});
    CHECK(status.code() == 0);
    CHECK_THAT(status.out, Catch::Contains("scimsyncd " SCIMSYNC_VERSION " is running"));
    daemon.send_signal(SIGTERM);
    const auto exited = daemon.wait(30s);
    REQUIRE(exited.has_value());
    CHECK(exited->code == 0);
}
