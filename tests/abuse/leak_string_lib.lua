-- expect: ok
-- changing what this plugin sees of string must not change another plugin's string
local ok = pcall(function() string.len = nil end)
rawset(string, "lower", function() return "pwned" end)
