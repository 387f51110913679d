-- expect: error
-- msg: collectgarbage
setmetatable({}, { __gc = function() while true do end end })
collectgarbage("collect")
