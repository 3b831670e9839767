#pragma once
// Small helpers shared by the test binaries. Hermetic by construction: every temp dir is
// unique and removed at scope exit; waiting is always "until a condition, with a deadline".

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace scimsync::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
class temp_dir {
public:
    explicit temp_dir(const std::string& prefix = "scimsync-test");
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Polls `condition` until it returns true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);

// The SCIM schema and message URNs the tests put in request bodies (RFC 7643, RFC 7644).
inline const std::string user_schema = "urn:ietf:params:scim:schemas:core:2.0:User";
inline const std::string group_schema = "urn:ietf:params:scim:schemas:core:2.0:Group";
inline const std::string patch_op = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// Path of a built binary (scimsyncd, scimsyncctl) in the build tree.
std::filesystem::path built_binary(const std::string& name);

}  // namespace scimsync::testing
