-- Adds users who are not yet members of the big group; once a thread has 64 of its additions
-- outstanding, every other request removes the oldest of them again (long answered by then,
-- with 32 connections per thread). The group stays within a few hundred of its size and the
-- users outside it never run out, however many runs there are. scim_loadgen does the same per
-- connection.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
local adds, removes = 0, 0
local function member(k)
  return members + ((run - 1) * 300000 + (tid - 1) * 150000 + k) % (users - members)
end
request = function()
  local body
  if adds - removes > 64 then
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
      '"Operations":[{"op":"remove","path":"members[value eq \\"u-' .. member(removes) .. '\\"]"}]}'
    removes = removes + 1
  else
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
      '"Operations":[{"op":"add","path":"members","value":[{"value":"u-' .. member(adds) .. '"}]}]}'
    adds = adds + 1
  end
  return wrk.format("PATCH", "/scim/v2/Groups/g-big", scim_headers, body)
end
