-- expect: error
-- msg: C stack overflow
-- table.sort without comparator: __lt (lua_lessthan in C) sorts again
local mt = {}
mt.__lt = function(a, b) table.sort({setmetatable({}, mt), setmetatable({}, mt)}) return false end
table.sort({setmetatable({}, mt), setmetatable({}, mt)})
