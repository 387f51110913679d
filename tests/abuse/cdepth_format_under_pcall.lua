-- expect: error
-- msg: C stack overflow
-- the format recursion under pcall, retried: each try ends at the bound, quickly
local t = setmetatable({}, {__tostring = function(x) return ("%s"):format(x) end})
local err
for i = 1, 2 do
  local ok, e = pcall(string.format, "%s", t)
  assert(not ok)
  err = e
end
error(err, 0)
