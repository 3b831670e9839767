-- Each request deactivates a different user, so every request is a real change (an event).
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local n = 0
request = function()
  local id = ((run - 1) * 300000 + (tid - 1) * 150000 + n) % users
  n = n + 1
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
    '"Operations":[{"op":"replace","value":{"active":false}}]}'
  return wrk.format("PATCH", "/scim/v2/Users/u-" .. id, scim_headers, body)
end
