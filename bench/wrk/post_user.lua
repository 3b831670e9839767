dofile(os.getenv("WRK_DIR") .. "/common.lua")
local n = 0
request = function()
  n = n + 1
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new-' ..
    run .. '-' .. tid .. '-' .. n .. '@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},' ..
    '"emails":[{"value":"bjensen@example.com","primary":true}],"active":true}'
  return wrk.format("POST", "/scim/v2/Users", scim_headers, body)
end
