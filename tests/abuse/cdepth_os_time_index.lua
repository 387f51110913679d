-- expect: error
-- msg: C stack overflow
-- os.time reads its table's fields with lua_getfield: an __index calling os.time again
local t = {}
setmetatable(t, {__index = function() return os.time(t) end})
os.time(t)
