-- expect: error
-- msg: C stack overflow
-- the same through coroutine.wrap
local function nest() return coroutine.wrap(nest)() end
nest()
