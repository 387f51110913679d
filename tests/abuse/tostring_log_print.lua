-- expect: ok
-- ngx.log and print with objects: through __tostring or refused, never an address
local t = setmetatable({}, {__tostring = function() return "obj" end})
ngx.log(ngx.ERR, "v=", t)
print(t)
assert(not pcall(print, {}))
assert(not pcall(ngx.log, ngx.ERR, function() end))
