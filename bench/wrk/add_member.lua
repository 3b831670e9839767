-- Each request adds a user who is not yet a member of the big group.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local n = 0
request = function()
  local id = members + ((run - 1) * 300000 + (tid - 1) * 150000 + n) % (users - members)
  n = n + 1
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
    '"Operations":[{"op":"add","path":"members","value":[{"value":"u-' .. id .. '"}]}]}'
  return wrk.format("PATCH", "/scim/v2/Groups/g-big", scim_headers, body)
end
