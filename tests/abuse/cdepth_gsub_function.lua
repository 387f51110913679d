-- expect: error
-- msg: C stack overflow
-- string.gsub whose replacement function calls gsub again: C recursion through the callback
local function f() return (string.gsub("a", "a", f)) end
f()
