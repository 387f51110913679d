-- expect: ok
-- ngx.sleep with everything but a plain duration: each a Lua error before anything waits
local mt = {__index = function() return 0 end, __tonumber = function() return 0 end}
local bad = {"soon", "0x10", "1e999", {}, setmetatable({}, mt), true, print, -0.5, 0/0,
             -math.huge, math.huge, coroutine.create(function() end), 1e300}
for _, v in ipairs(bad) do
  local ok = pcall(ngx.sleep, v)
  assert(not ok, "ngx.sleep accepted " .. tostring(v))
end
assert(not pcall(ngx.sleep), "no argument accepted")
assert(not pcall(ngx.sleep, 0, 0), "two arguments accepted")
