-- expect: error
-- msg: protected metatable
setmetatable(string, {})
