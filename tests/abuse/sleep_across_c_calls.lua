-- expect: ok
-- a sleep from code that C called (a gsub callback, a sort comparator, a metamethod reached
-- from C, an xpcall handler) cannot yield through C: a Lua error each time, nothing waits
local errs = 0
local function try(f) if not pcall(f) then errs = errs + 1 end end
try(function() string.gsub("aaa", "a", function() ngx.sleep(0) end) end)
try(function() table.sort({3, 2, 1, 4}, function(a, b) ngx.sleep(0) return a < b end) end)
try(function() ngx.re.gsub("aaa", "a", function() ngx.sleep(0) return "b" end) end)
try(function() tostring(setmetatable({}, {__tostring = function() ngx.sleep(0) return "x" end})) end)
try(function() string.format("%s", setmetatable({}, {__tostring = function() ngx.sleep(0) return "x" end})) end)
assert(errs == 5, "sleeps through C that did not fail: " .. (5 - errs))
