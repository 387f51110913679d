-- expect: ok
-- a table with a metatable crosses as plain data only
ngx.ctx.t = setmetatable({ a = 1 }, { __index = function() return "pwned" end })
