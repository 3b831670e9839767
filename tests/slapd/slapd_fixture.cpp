#include "slapd_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace scimsync::testing {

namespace {

std::filesystem::path make_temp_dir() {
    // Short: the path ends up in slapd's arguments and pid files.
    std::string tmpl = (std::filesystem::temp_directory_path() / "slapd.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

slapd_server::slapd_server(slapd_options o) : options_(std::move(o)), dir_(make_temp_dir()) {
    std::filesystem::create_directories(dir_ / "data");
    std::filesystem::create_directories(dir_ / "accesslog");
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 20 && pid_ <= 0; ++attempt) {
        port_ = 20000 + static_cast<int>(rng() % 40000);
        write_config();
        launch();
    }
    if (pid_ <= 0) {
        const std::string out = slurp(dir_ / "slapd.out");
        std::filesystem::remove_all(dir_);
        throw std::runtime_error("slapd did not start: " + out);
    }
    const std::string& s = options_.suffix;
    const std::string dc = s.substr(3, s.find(',') - 3);
    add({s,
         {{"objectClass", {"top", "dcObject", "organization"}},
          {"o", {"scimsync test"}},
          {"dc", {dc}}}});
    add({operator_dn(),
         {{"objectClass", {"simpleSecurityObject", "organizationalRole"}},
          {"cn", {"operator"}},
          {"userPassword", {operator_password()}}}});
    for (const char* ou : {"people", "groups", "disabled", "devices", "roles"}) {
        add({std::string("ou=") + ou + "," + s,
             {{"objectClass", {"top", "organizationalUnit"}}, {"ou", {ou}}}});
    }
}

slapd_server::~slapd_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void slapd_server::write_config() {
    const std::string d = dir_.string();
    const std::string nosync = options_.nosync ? "dbnosync\n" : "";
    std::ofstream c(dir_ / "slapd.conf");
    c << "include /etc/ldap/schema/core.schema\n"
         "include /etc/ldap/schema/cosine.schema\n"
         "include /etc/ldap/schema/inetorgperson.schema\n"
         "include /etc/ldap/schema/nis.schema\n"
         "modulepath /usr/lib/ldap\n"
         "moduleload back_mdb.so\n"
         "moduleload syncprov.so\n"
      << (options_.accesslog ? "moduleload accesslog.so\n" : "") << "pidfile " << d
      << "/slapd.pid\nargsfile " << d << "/slapd.args\n";
    if (options_.accesslog) {
        c << "database mdb\nsuffix \"cn=accesslog\"\nrootdn \"cn=accesslog\"\ndirectory " << d
          << "/accesslog\nmaxsize 1073741824\n"
          << nosync
          << "index default eq\nindex entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN eq\n"
             "access to * by dn.exact=\""
          << admin_dn()
          << "\" read by * none\n"
             "overlay syncprov\nsyncprov-nopresent TRUE\nsyncprov-reloadhint TRUE\n";
    }
    c << "database mdb\nsuffix \"" << options_.suffix << "\"\nrootdn \"" << admin_dn()
      << "\"\nrootpw " << admin_password() << "\ndirectory " << d << "/data\nmaxsize 1073741824\n"
      << nosync
      << "index objectClass eq\nindex entryCSN,entryUUID eq\nindex uid,cn,mail,member eq\n"
         "access to attrs=userPassword by dn.exact=\""
      << operator_dn()
      << "\" write by self read by anonymous auth by * none\n"
         "access to * by dn.exact=\""
      << operator_dn()
      << "\" write by users read by * none\n"
         "overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 10000\n";
    if (options_.accesslog) {
        c << "overlay accesslog\nlogdb \"cn=accesslog\"\nlogops writes\nlogsuccess TRUE\n"
             "logpurge 07+00:00 01+00:00\n";
    }
}

bool slapd_server::launch() {
    const std::string conf = (dir_ / "slapd.conf").string();
    const std::string listen = "ldap://127.0.0.1:" + std::to_string(port_);
    const std::string out = (dir_ / "slapd.out").string();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::execl("/usr/sbin/slapd", "slapd", "-f", conf.c_str(), "-h", listen.c_str(), "-d", "0",
                "-s", "0", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    // Ready when a bind succeeds; a slapd that cannot bind its port exits within milliseconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) return false;
        if (bridge::ldap_connection::open(admin_settings())) {
            pid_ = pid;
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return false;
}

void slapd_server::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void slapd_server::start() {
    if (pid_ > 0) return;
    if (!launch()) throw std::runtime_error("slapd did not restart: " + slurp(dir_ / "slapd.out"));
}

bridge::ldap_settings slapd_server::admin_settings() const {
    bridge::ldap_settings s;
    s.url = url();
    s.bind_dn = admin_dn();
    s.bind_password = admin_password();
    s.timeout = std::chrono::milliseconds(2000);
    return s;
}

std::vector<bridge::ldap_entry> slapd_server::search(const std::string& base,
                                                     const std::string& filter,
                                                     const std::vector<std::string>& attributes) {
    auto c = bridge::ldap_connection::open(admin_settings());
    if (!c) throw std::runtime_error(c.error().message);
    auto r = (*c)->search(base, filter, attributes);
    if (!r) throw std::runtime_error(r.error().message);
    return *r;
}

void slapd_server::add(const bridge::ldap_entry& entry) {
    auto c = bridge::ldap_connection::open(admin_settings());
    if (!c) throw std::runtime_error(c.error().message);
    auto id = (*c)->add(entry);
    if (!id) throw std::runtime_error(id.error().message);
    auto r = (*c)->next_result(std::chrono::seconds(10));
    if (!r || !*r) throw std::runtime_error("add " + entry.dn + ": no answer");
    if ((*r)->code != 0)
        throw std::runtime_error("add " + entry.dn + ": code " + std::to_string((*r)->code));
}

}  // namespace scimsync::testing
