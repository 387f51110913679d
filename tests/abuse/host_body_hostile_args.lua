-- expect: ok
-- The request body functions with hostile arguments: each is a Lua error, nothing is read
-- or built, and the functions still answer plainly afterwards.
local bad = {"x", {}, print, true, coroutine.create(print), -1, 0 / 0, -math.huge}
for i = 1, #bad do
  assert(not pcall(ngx.req.get_body_data, bad[i]), "get_body_data took " .. tostring(bad[i]))
  assert(not pcall(ngx.req.read_body, bad[i]), "read_body took an argument")
end
for _, v in ipairs({"x", {}, print, true, coroutine.create(print)}) do
  assert(not pcall(ngx.req.get_post_args, v), "get_post_args took " .. tostring(v))
end
assert(not pcall(ngx.req.get_post_args, 1, 2), "get_post_args took two arguments")
assert(not pcall(ngx.req.get_body_data, 1, 2), "get_body_data took two arguments")
local mt = setmetatable({}, {__tonumber = function() return 8 end,
                             __index = function() error("read") end})
assert(not pcall(ngx.req.get_body_data, mt))
assert(not pcall(ngx.req.get_post_args, mt))
-- before read_body: no data, and get_post_args says why
assert(ngx.req.get_body_data() == nil)
local ok, err = pcall(ngx.req.get_post_args)
assert(not ok and tostring(err):find("read_body", 1, true), tostring(err))
ngx.req.read_body()
ngx.req.read_body()
assert(ngx.req.get_body_data(math.huge) == nil) -- the request has no body
local args = ngx.req.get_post_args(0)
assert(type(args) == "table" and next(args) == nil)
