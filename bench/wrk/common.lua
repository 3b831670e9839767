-- Shared by the scim_load scenarios: the bearer token and the directory size come from the
-- environment (set by bench/scim_load.sh).
token = os.getenv("SCIM_TOKEN")
users = tonumber(os.getenv("SCIM_USERS"))
members = tonumber(os.getenv("SCIM_MEMBERS"))
-- Each run (1, 2, ...) works on its own users, so that every request of every run is a real change.
run = tonumber(os.getenv("SCIM_RUN") or "1")
scim_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/scim+json" }
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
