-- expect: error
-- msg: C stack overflow
-- __tostring reached from string.format's %s, calling string.format again
local t = setmetatable({}, {})
getmetatable(t).__tostring = function(x) return string.format("%s", x) end
local s = string.format("%s", t)
