dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = function()
  local name = "user" .. math.random(0, users - 1) .. "%40example.com"
  return wrk.format("GET", "/scim/v2/Users?filter=userName%20eq%20%22" .. name .. "%22", scim_headers)
end
