-- expect: ok
-- metamethods cannot be taken from API values to call them with a crafted first argument
for _, v in ipairs({ngx.var, ngx.header, ngx.arg, ngx.ctx, ngx, string, ""}) do
  local mt = getmetatable(v)
  assert(type(mt) ~= "table", "metatable reachable")
end
-- nor reached through a read-only proxy's fields
assert(rawget(string, "__index") == nil and rawget(ngx, "__index") == nil)
