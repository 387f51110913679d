-- expect: error
-- msg: C stack overflow
-- coroutines resumed inside coroutines: each resume runs on the same C stack
local function nest()
  local ok, e = coroutine.resume(coroutine.create(nest))
  if not ok then error(e, 0) end
end
nest()
