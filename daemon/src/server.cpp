// The only TU that includes Boost.Asio and Beast (INFRA.md 1 and 6: each such TU costs ~15 s and
// ~600 MB to compile). The HTTP side follows Beast's advanced server: each connection on one
// io_context run by one thread (which serialises its handlers as a strand would), a timeout on
// every read and write, a body limit, keep-alive, one request at a time per connection
// (pipelined requests wait in the buffer).

#include "scimsync/daemon/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace scimsync::daemon {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;
using error_code = boost::system::error_code;

// Admin requests are small JSON objects; a longer line is refused.
constexpr std::size_t max_admin_line = 1u << 20;

std::string bracket(const std::string& host) {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Something the drain must close or wait for.
class connection {
public:
    virtual ~connection() = default;
    // Callable from any thread: the connection continues on its own thread, closing at once if
    // idle, else after answering the request it is working on.
    virtual void shutdown() = 0;
};

}  // namespace

struct server::impl {
    impl(server_options o, const router& r, const command_registry& c)
        : options(std::move(o)), routes(r), commands(c) {
        for (unsigned i = 1; i < std::max(1u, options.threads); ++i) {
            pool.push_back(std::make_unique<net::io_context>(1));
            pool_work.push_back(net::make_work_guard(*pool.back()));
        }
    }
    ~impl();

    std::expected<void, std::string> open_admin_socket();
    std::expected<void, std::string> open_http();
    void accept_http();
    void accept_admin();
    void wait_signal();
    void schedule_tick();
    void begin_drain();
    void finish_if_drained();
    void remember(const std::shared_ptr<connection>& c);
    void forget(connection* c);
    void remove_admin_socket();
    net::io_context& next_context();
    void stop_all();
    void notice(const std::string& line) const {
        if (options.notice) options.notice(line);
    }

    server_options options;
    const router& routes;
    const command_registry& commands;

    // Declared before the io_context: connections still queued in it are destroyed with it and
    // call forget() from their destructors.
    std::mutex connections_mu;
    std::map<connection*, std::weak_ptr<connection>> connections;
    std::atomic<bool> destroying{false};

    // Identity of the admin socket file we bound, so that we only ever remove our own.
    std::optional<std::pair<dev_t, ino_t>> admin_socket_id;

    // One io_context per io thread, each run by its thread alone (concurrency hint 1): the
    // first thread runs `ioc` (which also holds the acceptors, signals and timers), the others
    // one of `pool` each, and HTTP connections are dealt out in turn. One io_context shared by
    // every thread made them take turns at the reactor and wake each other through its
    // mutex: with 2 threads a GET /healthz cost 34-46 us of CPU against 20-22 us with 1
    // (bench/README.md).
    net::io_context ioc{1};
    std::vector<std::unique_ptr<net::io_context>> pool;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> pool_work;
    std::size_t dealt = 0;  // on `control` only: connections dealt out so far
    std::optional<net::ssl::context> tls_context;  // set when options.tls_cert_file is
    // Acceptors, signals and the drain timer run on this strand; so does begin_drain().
    net::strand<net::io_context::executor_type> control{net::make_strand(ioc)};
    tcp::acceptor http_acceptor{control};
    local::acceptor admin_acceptor{control};
    net::signal_set signals{control};
    net::steady_timer drain_timer{control};
    net::steady_timer accept_retry_timer{control};
    net::steady_timer tick_timer{control};
    bool stopping = false;  // on `control` only
};

namespace {

// ---------------------------------------------------------------------------------------------
// HTTP

// One HTTP connection, over plain TCP (Stream = beast::tcp_stream) or TLS
// (beast::ssl_stream<beast::tcp_stream>): the same code, with a handshake first and a TLS
// shutdown last for the latter.
template <class Stream>
class http_session final : public connection,
                           public std::enable_shared_from_this<http_session<Stream>> {
    static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;
    using std::enable_shared_from_this<http_session<Stream>>::shared_from_this;

public:
    http_session(tcp::socket&& socket, server::impl& owner) requires(!tls)
        : stream_(std::move(socket)), owner_(owner) {
        note_peer();
    }
    http_session(tcp::socket&& socket, net::ssl::context& ctx, server::impl& owner) requires(tls)
        : stream_(std::move(socket), ctx), owner_(owner) {
        note_peer();
    }
    ~http_session() override { owner_.forget(this); }

    void start() {
        if constexpr (tls) {
            net::dispatch(lowest().get_executor(), [self = shared_from_this()] {
                self->lowest().expires_after(self->owner_.options.read_timeout);
                self->stream_.async_handshake(
                    net::ssl::stream_base::server,
                    beast::bind_front_handler(&http_session::on_handshake, self));
            });
        } else {
            net::dispatch(stream_.get_executor(),
                          beast::bind_front_handler(&http_session::do_read, shared_from_this()));
        }
    }

    void shutdown() override {
        net::post(lowest().get_executor(), [self = shared_from_this()] {
            self->stopping_ = true;
            // Only an idle connection is cut; a request that has started arriving is read
            // within the read timeout and answered, and then the connection closes. If bytes
            // were read but their completion is still queued, cancel() cannot reach that read
            // and the same happens.
            if (self->state_ == state::reading && self->idle()) self->lowest().cancel();
        });
    }

private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    void note_peer() {
        error_code ec;
        const auto peer = lowest().socket().remote_endpoint(ec);
        if (!ec) remote_ = bracket(peer.address().to_string()) + ":" + std::to_string(peer.port());
    }

    void on_handshake(error_code ec) {
        if (ec) {
            // A client that does not speak TLS, or a certificate it refused: nothing to answer.
            error_code ignored;
            lowest().socket().close(ignored);
            state_ = state::closed;
            return;
        }
        do_read();
    }

    enum class state { reading, handling, writing, closed };

    // No byte of a next request has arrived: not in the parser (while reading; otherwise it
    // holds the previous request), the buffer or the kernel.
    bool idle() {
        error_code ignored;
        return !(state_ == state::reading && parser_->got_some()) && buffer_.size() == 0 &&
               lowest().socket().available(ignored) == 0;
    }

    void do_read() {
        if (stopping_ && idle()) return do_close();
        parser_.emplace();
        parser_->body_limit(owner_.options.body_limit_bytes);
        lowest().expires_after(owner_.options.read_timeout);
        state_ = state::reading;
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&http_session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        if (ec == http::error::body_limit) {
            return reply_and_close(scim_error(413,
                                              "request body exceeds " +
                                                  std::to_string(owner_.options.body_limit_bytes) +
                                                  " bytes",
                                              "tooLarge"));
        }
        if (ec == http::error::header_limit) {
            return reply_and_close(scim_error(431, "request header fields are too large"));
        }
        if (ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message &&
            ec != http::error::short_read) {
            return reply_and_close(scim_error(400, "malformed HTTP request: " + ec.message()));
        }
        if (ec) return do_close();  // end of stream, timeout, reset, cancelled by the drain

        auto req = parser_->release();
        version_ = req.version();
        keep_alive_ = req.keep_alive();
        http_request request;
        request.method = std::string(req.method_string());
        request.target = std::string(req.target());
        for (const auto& field : req) {
            request.headers.emplace_back(std::string(field.name_string()),
                                         std::string(field.value()));
        }
        request.body = std::move(req.body());
        request.remote = remote_;

        state_ = state::handling;
        lowest().expires_never();
        auto self = shared_from_this();
        auto answered = std::make_shared<std::atomic<bool>>(false);
        owner_.routes.dispatch(std::move(request), [self, answered](http_response response) {
            if (answered->exchange(true)) return;
            net::post(self->lowest().get_executor(), [self, r = std::move(response)]() mutable {
                self->do_write(std::move(r), false);
            });
        });
    }

    // For requests that could not be read whole: unread bytes may follow, so the close lingers.
    void reply_and_close(http_response response) {
        if (version_ == 0) version_ = 11;
        linger_ = true;
        do_write(std::move(response), true);
    }

    void do_write(http_response response, bool close_after) {
        res_ = {};
        res_.version(version_);
        res_.result(static_cast<unsigned>(response.status));
        for (auto& [name, value] : response.headers) {
            const auto field = http::string_to_field(name);
            // The server owns the framing and connection management.
            if (field == http::field::content_length || field == http::field::connection ||
                field == http::field::transfer_encoding) {
                continue;
            }
            res_.insert(name, value);
        }
        res_.set(http::field::server, owner_.options.server_header);
        res_.keep_alive(keep_alive_ && !close_after && !stopping_);
        res_.body() = std::move(response.body);
        res_.prepare_payload();

        state_ = state::writing;
        lowest().expires_after(owner_.options.read_timeout);
        http::async_write(stream_, res_,
                          beast::bind_front_handler(&http_session::on_write, shared_from_this(),
                                                    !res_.keep_alive()));
    }

    void on_write(bool close, error_code ec, std::size_t) {
        if (ec) return do_close();
        if (close) return linger_ ? do_linger() : do_close();
        do_read();
    }

    // Closing with unread request bytes makes the kernel send RST, which can destroy the
    // response we just wrote before the client reads it (e.g. a 413 while the body is still
    // arriving). So half-close, then read and discard until the peer closes or a short timeout.
    void do_linger() {
        error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        state_ = state::closed;
        lowest().expires_after(
            std::min<std::chrono::seconds>(owner_.options.read_timeout, std::chrono::seconds(2)));
        stream_.async_read_some(
            net::buffer(discard_),
            beast::bind_front_handler(&http_session::on_linger, shared_from_this()));
    }

    void on_linger(error_code ec, std::size_t) {
        if (ec) return do_close();
        stream_.async_read_some(
            net::buffer(discard_),
            beast::bind_front_handler(&http_session::on_linger, shared_from_this()));
    }

    void do_close() {
        state_ = state::closed;
        if constexpr (tls) {
            // close_notify first (bounded by a short timeout), then the socket.
            lowest().expires_after(std::chrono::seconds(2));
            stream_.async_shutdown([self = shared_from_this()](error_code) {
                error_code ignored;
                self->lowest().socket().close(ignored);
            });
        } else {
            error_code ignored;
            lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
            lowest().socket().close(ignored);
        }
    }

    Stream stream_;
    server::impl& owner_;
    // Beast reads max(512, free capacity) bytes at a time, and every request empties the
    // buffer, so it never grows by itself: a request over 512 bytes (an identity provider's
    // user with a few attributes, plus headers and bearer token) would take several reads from
    // the socket every time. Room for a typical request makes it one.
    beast::flat_buffer buffer_ = [] {
        beast::flat_buffer b;
        b.reserve(4096);
        return b;
    }();
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> res_;
    std::array<char, 4096> discard_{};
    std::string remote_;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    bool stopping_ = false;
    bool linger_ = false;
    state state_ = state::reading;
};

// ---------------------------------------------------------------------------------------------
// Admin socket: newline-delimited JSON, one request and one response per line.

class admin_session final : public connection, public std::enable_shared_from_this<admin_session> {
public:
    admin_session(local::socket&& socket, server::impl& owner)
        : socket_(std::move(socket)),
          timer_(socket_.get_executor()),
          buffer_(max_admin_line),
          owner_(owner),
          caller_(socket_peer_name(socket_.native_handle())) {}
    ~admin_session() override { owner_.forget(this); }

    void start() {
        net::dispatch(socket_.get_executor(),
                      beast::bind_front_handler(&admin_session::do_read, shared_from_this()));
    }

    void shutdown() override {
        net::post(socket_.get_executor(), [self = shared_from_this()] {
            self->stopping_ = true;
            if (self->reading_ && self->idle()) self->do_close();
        });
    }

private:
    bool idle() {
        error_code ignored;
        return buffer_.size() == 0 && socket_.available(ignored) == 0;
    }

    void do_read() {
        if (stopping_ && idle()) return do_close();
        reading_ = true;
        timer_.expires_after(owner_.options.read_timeout);
        timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) self->do_close();
        });
        net::async_read_until(
            socket_, buffer_, '\n',
            beast::bind_front_handler(&admin_session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t n) {
        reading_ = false;
        timer_.cancel();
        if (ec == net::error::not_found) {
            out_ = R"({"ok":false,"error":"request line too long"})"
                   "\n";
            return do_write(true);
        }
        if (ec) return do_close();
        std::string line(net::buffers_begin(buffer_.data()),
                         net::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n - 1));
        buffer_.consume(n);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out_ = owner_.commands.handle_line(line, caller_) + "\n";
        do_write(false);
    }

    void do_write(bool close_after) {
        timer_.expires_after(owner_.options.read_timeout);
        timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) self->do_close();
        });
        net::async_write(socket_, net::buffer(out_),
                         [self = shared_from_this(), close_after](error_code ec, std::size_t) {
                             self->timer_.cancel();
                             if (ec || close_after) return self->do_close();
                             self->do_read();
                         });
    }

    void do_close() {
        error_code ignored;
        socket_.shutdown(local::socket::shutdown_both, ignored);
        socket_.close(ignored);
        timer_.cancel();
    }

    local::socket socket_;
    net::steady_timer timer_;
    net::streambuf buffer_;
    std::string out_;
    server::impl& owner_;
    const std::string caller_;  // the peer's Unix user, put into every command's args
    bool reading_ = false;
    bool stopping_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// server::impl

server::impl::~impl() {
    destroying = true;
    remove_admin_socket();
}

void server::impl::remember(const std::shared_ptr<connection>& c) {
    std::lock_guard lock(connections_mu);
    connections.emplace(c.get(), c);
}

void server::impl::forget(connection* c) {
    bool last = false;
    {
        std::lock_guard lock(connections_mu);
        connections.erase(c);
        last = connections.empty();
    }
    if (last && !destroying) net::post(control, [this] { finish_if_drained(); });
}

void server::impl::remove_admin_socket() {
    if (!admin_socket_id) return;
    struct stat st {};
    if (::lstat(options.admin_socket.c_str(), &st) == 0 && st.st_dev == admin_socket_id->first &&
        st.st_ino == admin_socket_id->second) {
        ::unlink(options.admin_socket.c_str());
    }
    admin_socket_id.reset();
}

std::expected<void, std::string> server::impl::open_admin_socket() {
    const std::string path = options.admin_socket.string();
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
        return std::unexpected("admin socket path " + path + " is too long (at most " +
                               std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes)");
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return std::unexpected("admin socket path " + path +
                                   " exists and is not a socket; refusing to replace it");
        }
        // Probe: a listener there means another daemon owns it; ECONNREFUSED means the file is
        // left over from a daemon that did not exit cleanly.
        // Two daemons starting at the same instant can still both see a stale file; the data
        // directory's lock (the log) is what keeps them from sharing state.
        const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) return std::unexpected(std::string("socket: ") + std::strerror(errno));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        const int err = errno;
        ::close(probe);
        if (rc == 0 || err == EAGAIN) {
            return std::unexpected(
                "another process (scimsyncd?) is already listening on admin "
                "socket " +
                path);
        }
        if (err != ECONNREFUSED) {
            return std::unexpected("cannot check existing admin socket " + path + ": " +
                                   std::strerror(err));
        }
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return std::unexpected("cannot remove stale admin socket " + path + ": " +
                                   std::strerror(errno));
        }
        notice("removed stale admin socket " + path);
    }

    error_code ec;
    admin_acceptor.open(local(), ec);
    if (!ec) {
        // The socket is created 0600 from the start (no window with looser permissions): the
        // file mode is the admin API's access control.
        const mode_t old_mask = ::umask(0177);
        admin_acceptor.bind(local::endpoint(path), ec);
        ::umask(old_mask);
    }
    if (ec) return std::unexpected("cannot bind admin socket " + path + ": " + ec.message());
    if (::lstat(path.c_str(), &st) == 0) admin_socket_id = {st.st_dev, st.st_ino};
    if (::chmod(path.c_str(), 0600) != 0) {
        return std::unexpected("cannot chmod admin socket " + path + ": " + std::strerror(errno));
    }
    admin_acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return std::unexpected("cannot listen on admin socket " + path + ": " + ec.message());
    return {};
}

std::expected<void, std::string> server::impl::open_http() {
    const std::string where = bracket(options.host) + ":" + std::to_string(options.port);
    error_code ec;
    if (!options.tls_cert_file.empty()) {
        tls_context.emplace(net::ssl::context::tls_server);
        tls_context->set_options(net::ssl::context::default_workarounds |
                                 net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                                 net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                                 net::ssl::context::single_dh_use);
        // OpenSSL's own message says little ("asio.ssl error"): name what is wrong with the file.
        auto refused = [](const char* key, const std::filesystem::path& file, const char* what) {
            std::string why = what;
            if (::access(file.c_str(), R_OK) != 0) why = std::strerror(errno);
            return std::unexpected(std::string(key) + ": cannot use " + file.string() + ": " + why);
        };
        tls_context->use_certificate_chain_file(options.tls_cert_file.string(), ec);
        if (ec)
            return refused("http.tls.cert_file", options.tls_cert_file,
                           "not a PEM certificate chain");
        tls_context->use_private_key_file(options.tls_key_file.string(), net::ssl::context::pem,
                                          ec);
        if (ec)
            return refused("http.tls.key_file", options.tls_key_file,
                           "not a PEM private key, or not the key of the certificate");
    }
    const auto address = net::ip::make_address(options.host, ec);
    if (ec) return std::unexpected("cannot listen on " + where + ": not an IP address");
    const tcp::endpoint endpoint(address, options.port);
    http_acceptor.open(endpoint.protocol(), ec);
    if (!ec) http_acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) http_acceptor.bind(endpoint, ec);
    if (!ec) http_acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return std::unexpected("cannot listen on " + where + ": " + ec.message());
    return {};
}

void server::impl::accept_http() {
    // No strand: the connection's io_context is run by one thread only, which already keeps
    // its handlers from running at once (a strand cost a shared_ptr copy and a mutex per
    // executor copy, and Beast copies executors several times per request).
    http_acceptor.async_accept(next_context().get_executor(), [this](error_code ec,
                                                                     tcp::socket socket) {
        if (stopping || !http_acceptor.is_open()) return;
        if (ec) {
            notice("http accept failed: " + ec.message());
            // Out of descriptors: back off instead of spinning on the same error.
            if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space) {
                accept_retry_timer.expires_after(std::chrono::milliseconds(100));
                accept_retry_timer.async_wait([this](error_code e) {
                    if (!e) accept_http();
                });
                return;
            }
        } else {
            error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            if (tls_context) {
                auto session = std::make_shared<http_session<beast::ssl_stream<beast::tcp_stream>>>(
                    std::move(socket), *tls_context, *this);
                remember(session);
                session->start();
            } else {
                auto session =
                    std::make_shared<http_session<beast::tcp_stream>>(std::move(socket), *this);
                remember(session);
                session->start();
            }
        }
        accept_http();
    });
}

void server::impl::accept_admin() {
    admin_acceptor.async_accept(net::make_strand(ioc), [this](error_code ec, local::socket socket) {
        if (stopping || !admin_acceptor.is_open()) return;
        if (ec) {
            notice("admin accept failed: " + ec.message());
        } else {
            auto session = std::make_shared<admin_session>(std::move(socket), *this);
            remember(session);
            session->start();
        }
        accept_admin();
    });
}

void server::impl::schedule_tick() {
    if (options.tick_interval.count() <= 0 || !options.on_tick) return;
    tick_timer.expires_after(options.tick_interval);
    tick_timer.async_wait([this](error_code ec) {
        if (ec || stopping) return;
        options.on_tick();
        schedule_tick();
    });
}

void server::impl::wait_signal() {
    signals.async_wait([this](error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            if (!stopping && options.on_reload) options.on_reload();
            wait_signal();
            return;
        }
        if (stopping) {
            notice("second signal " + std::string(::strsignal(sig)) + " during drain: exiting now");
            stop_all();
            return;
        }
        // Re-armed first, so that a second signal during the drain forces the exit; the drain
        // cancels the wait once nothing is left.
        wait_signal();
        begin_drain();
    });
}

net::io_context& server::impl::next_context() {
    const std::size_t i = dealt++ % (pool.size() + 1);
    return i == 0 ? ioc : *pool[i - 1];
}

// Every io_context returns from run() now, connections or not (a forced exit).
void server::impl::stop_all() {
    ioc.stop();
    for (auto& c : pool) c->stop();
}

void server::impl::begin_drain() {
    if (stopping) return;
    stopping = true;
    if (options.on_drain) options.on_drain();
    error_code ignored;
    http_acceptor.close(ignored);
    admin_acceptor.close(ignored);
    accept_retry_timer.cancel();
    tick_timer.cancel();
    remove_admin_socket();

    std::vector<std::shared_ptr<connection>> live;
    {
        std::lock_guard lock(connections_mu);
        for (auto& [raw, weak] : connections) {
            if (auto c = weak.lock()) live.push_back(std::move(c));
        }
    }
    for (auto& c : live) c->shutdown();
    drain_timer.expires_after(options.drain_timeout);
    drain_timer.async_wait([this](error_code ec) {
        if (ec) return;
        std::size_t left = 0;
        {
            std::lock_guard lock(connections_mu);
            left = connections.size();
        }
        notice("drain timed out after " + std::to_string(options.drain_timeout.count()) +
               " s; closing " + std::to_string(left) + " connection(s)");
        stop_all();
    });
    finish_if_drained();
}

void server::impl::finish_if_drained() {
    if (!stopping) return;
    {
        std::lock_guard lock(connections_mu);
        if (!connections.empty()) return;
    }
    // Nothing left to wait for: with the timer and the signal wait gone, run() returns.
    drain_timer.cancel();
    signals.cancel();
}

// ---------------------------------------------------------------------------------------------
// server

server::server(server_options options, const router& routes, const command_registry& commands)
    : impl_(std::make_unique<impl>(std::move(options), routes, commands)) {}

server::~server() = default;

std::expected<void, std::string> server::open() {
    auto& s = *impl_;
    if (!s.options.admin_socket.empty()) {
        if (auto r = s.open_admin_socket(); !r) return r;
    }
    if (auto r = s.open_http(); !r) return r;
    s.signals.add(SIGTERM);
    s.signals.add(SIGINT);
    if (s.options.on_reload) s.signals.add(SIGHUP);
    s.wait_signal();
    s.schedule_tick();
    s.accept_http();
    if (s.admin_acceptor.is_open()) s.accept_admin();
    return {};
}

std::string server::http_host() const {
    error_code ec;
    const auto ep = impl_->http_acceptor.local_endpoint(ec);
    return ec ? impl_->options.host : ep.address().to_string();
}

std::uint16_t server::http_port() const {
    error_code ec;
    const auto ep = impl_->http_acceptor.local_endpoint(ec);
    return ec ? impl_->options.port : ep.port();
}

std::string server::http_url() const {
    return std::string(impl_->tls_context ? "https://" : "http://") + bracket(http_host()) + ":" +
           std::to_string(http_port());
}

void server::run() {
    auto& s = *impl_;
    const auto serve = [&s](net::io_context& ctx) {
        while (true) {
            try {
                ctx.run();
                return;
            } catch (const std::exception& e) {
                // A handler let an exception escape: report it and keep serving.
                s.notice(std::string("unexpected exception in io thread: ") + e.what());
            }
        }
    };
    std::vector<std::thread> extra;
    for (auto& c : s.pool) extra.emplace_back([&serve, ctx = c.get()] { serve(*ctx); });
    serve(s.ioc);
    // `ioc` runs out of work once the drain is over (every connection closed, the timers and
    // the signal wait cancelled): the other threads may stop waiting for connections too.
    for (auto& w : s.pool_work) w.reset();
    for (auto& t : extra) t.join();
}

void server::stop() {
    net::post(impl_->control, [s = impl_.get()] { s->begin_drain(); });
}

}  // namespace scimsync::daemon
