dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = function()
  return wrk.format("GET", "/scim/v2/Users/u-" .. math.random(0, users - 1), scim_headers)
end
