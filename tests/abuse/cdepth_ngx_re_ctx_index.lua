-- expect: error
-- msg: C stack overflow
-- ngx.re.match reads ctx.pos with lua_getfield: an __index matching again
local ctx = {}
setmetatable(ctx, {__index = function() ngx.re.match("a", "a", "", ctx) return 1 end})
ngx.re.match("a", "a", "", ctx)
