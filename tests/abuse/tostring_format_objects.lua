-- expect: error
-- msg: '__tostring' must return a string
-- format's %s needs a string from __tostring (LuaJIT's own check); no address on the way
string.format("%s", setmetatable({}, {__tostring = function() return {} end}))
