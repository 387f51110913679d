-- expect: error
-- msg: C stack overflow
-- the same recursion inside pcall: the overflow is an ordinary error pcall catches, no crash
local function f() return (("a"):gsub("a", f)) end
local ok, err = pcall(f)
assert(not ok)
error(err, 0)
