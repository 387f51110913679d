-- expect: ok
-- tostring, string.format and error messages give opaque ids, never heap addresses
local t, f, co = {}, function() end, coroutine.create(function() end)
local function id(s, kind)
  local hex = s:match("^" .. kind .. ": 0x(%x+)$")
  assert(hex, "unexpected text " .. s)
  assert(tonumber(hex, 16) < 0x100000, "looks like an address: " .. s)
  return s
end
id(tostring(t), "table")
id(tostring(f), "function")
id(tostring(co), "thread")
id(tostring(print), "function")
id(tostring(string.gsub), "function")
assert(tostring(t) == tostring(t), "not stable")
assert(tostring(t) ~= tostring({}), "not distinct")
assert(string.format("%s", t) == tostring(t), "format differs")
assert(("%5s|%s"):format(1, f) == "    1|" .. tostring(f))
assert(not pcall(string.format, "%p", "x"), "%p allowed")
assert(not pcall(string.format, "%10p", t), "%10p allowed")
local ok, e = pcall(function() return t .. "" end)
assert(not ok and not tostring(e):find("0x"), e)
assert(tostring(nil) == "nil" and tostring(1.5) == "1.5" and tostring(true) == "true")
assert(tostring(setmetatable({}, {__tostring = function() return "me" end})) == "me")
