-- expect: error
-- msg: C stack overflow
-- __tostring calling tostring on itself
local t = setmetatable({}, {__tostring = function(x) return tostring(x) end})
tostring(t)
