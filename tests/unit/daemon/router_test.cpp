#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "scimsync/daemon/router.hpp"

namespace sd = scimsync::daemon;

namespace {
sd::http_request get(std::string target, std::string method = "GET") {
    sd::http_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    return r;
}
}  // namespace

TEST_CASE("the router fills path parameters from the matched pattern", "[daemon][router]") {
    sd::router routes;
    routes.add("GET", "/scim/v2/Users/{id}", [](const sd::http_request& r) {
        return sd::json_response(200, nlohmann::json{{"id", r.path_params.at("id")}}.dump());
    });
    auto resp = routes.handle(get("/scim/v2/Users/2819c223?attributes=userName"));
    REQUIRE(resp.status == 200);
    REQUIRE(nlohmann::json::parse(resp.body)["id"] == "2819c223");
}

TEST_CASE("an unknown path is 404 and a known path with another method is 405 with Allow",
          "[daemon][router]") {
    sd::router routes;
    routes.add("GET", "/healthz",
               [](const sd::http_request&) { return sd::json_response(200, "{}"); });
    auto missing = routes.handle(get("/nope"));
    REQUIRE(missing.status == 404);
    auto body = nlohmann::json::parse(missing.body);
    REQUIRE(body["schemas"][0] == sd::scim_error_schema);
    REQUIRE(body["status"] == "404");
    auto wrong = routes.handle(get("/healthz", "DELETE"));
    REQUIRE(wrong.status == 405);
    REQUIRE(wrong.header("allow").value_or("").find("GET") != std::string_view::npos);
}

TEST_CASE("a handler that throws becomes a 500 with a generic SCIM error body",
          "[daemon][router]") {
    sd::router routes;
    routes.add("GET", "/boom", [](const sd::http_request&) -> sd::http_response {
        throw std::runtime_error("secret internal detail");
    });
    auto resp = routes.handle(get("/boom"));
    REQUIRE(resp.status == 500);
    REQUIRE(resp.body.find("secret internal detail") == std::string::npos);
}
