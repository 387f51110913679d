-- expect: error
-- getmetatable("") is hidden, so the string metatable cannot be reached
getmetatable("").__index = { upper = function() return "pwned" end }
