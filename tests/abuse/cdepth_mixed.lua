-- expect: error
-- msg: C stack overflow
-- a recursion alternating between several C functions that call back
local t = {}
local n = 0
local function step()
  n = n + 1
  if n % 3 == 0 then return (string.gsub("a", "a", step)) end
  if n % 3 == 1 then return string.format("%s", t) end
  table.sort({1, 2}, function(a, b) step() return a < b end)
  return "x"
end
setmetatable(t, {__tostring = step})
step()
