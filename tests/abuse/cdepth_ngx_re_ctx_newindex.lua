-- expect: error
-- msg: C stack overflow
-- ngx.re.find writes ctx.pos with lua_setfield: a __newindex matching again
local ctx = {}
setmetatable(ctx, {__newindex = function() ngx.re.find("a", "a", "", ctx) end})
ngx.re.find("a", "a", "", ctx)
