-- expect: error
-- msg: C stack overflow
-- gsub with a table replacement whose __index runs gsub again (lua_gettable in C)
local t = {}
setmetatable(t, {__index = function(_, k) return (string.gsub(k, ".", t)) end})
string.gsub("a", ".", t)
