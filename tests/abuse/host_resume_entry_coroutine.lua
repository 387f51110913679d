-- expect: ok
-- the entry coroutine kept and resumed from a coroutine of its own: refused, nothing changes
saved = saved or coroutine.running()
local ok = coroutine.resume(saved)
local ok2 = coroutine.wrap(function() return coroutine.resume(saved) end)()
assert(not ok and not ok2)
