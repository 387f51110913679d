-- expect: ok
-- ngx.req.set_method with everything but a method constant: each is a Lua error naming the
-- function, the method never changes, and a constant still works afterwards.
local bad = {nil, "POST", "8", 3, 8.5, -8, 0 / 0, math.huge, 2 ^ 53, 2 ^ 31 + 8, {}, print,
             true, coroutine.create(print), ngx.HTTP_OK, ngx.HTTP_GET + ngx.HTTP_POST}
for i = 1, 16 do
  local ok, err = pcall(ngx.req.set_method, bad[i])
  assert(not ok and tostring(err):find("set_method", 1, true), tostring(err))
  assert(ngx.req.get_method() == "GET", ngx.req.get_method())
end
local mt = setmetatable({}, {__tonumber = function() return 8 end,
                             __index = function() error("read") end})
assert(not pcall(ngx.req.set_method, mt))
ngx.req.set_method(ngx.HTTP_PUT)
assert(ngx.req.get_method() == "PUT")
ngx.req.set_method(ngx.HTTP_GET)
