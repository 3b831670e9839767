-- Shared by the scim_load scenarios: the bearer token and the directory size come from the
-- environment (set by bench/scim_load.sh).
token = os.getenv("SCIM_TOKEN")
users = tonumber(os.getenv("SCIM_USERS"))
members = tonumber(os.getenv("SCIM_MEMBERS"))
scim_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/scim+json" }
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
