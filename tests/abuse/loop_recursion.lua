-- expect: error quota:memory quota:instructions
-- deep recursion: Lua's stack limit or the memory quota ends it
local function f(n) return 1 + f(n + 1) end
f(1)
