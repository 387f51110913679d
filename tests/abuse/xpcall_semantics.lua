-- expect: ok
-- xpcall still behaves as Lua's: results, handler's value, extra arguments
local ok, a, b = xpcall(function(x, y) return x + y, "z" end, error, 1, 2)
assert(ok == true and a == 3 and b == "z", "results")
local ok2, m = xpcall(function() error("boom", 0) end, function(e) return "h:" .. e end)
assert(ok2 == false and m == "h:boom", "handler value " .. tostring(m))
local ok3 = xpcall(function() error({}) end, function(e) return type(e) end)
assert(ok3 == false)
