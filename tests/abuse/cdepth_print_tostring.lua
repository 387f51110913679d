-- expect: error
-- msg: C stack overflow
-- __tostring reached from print, printing itself
local t = setmetatable({}, {__tostring = function(x) print(x) return "x" end})
print(t)
