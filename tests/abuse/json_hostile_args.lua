-- expect: ok
-- tables with metamethods, foreign types and NUL bytes: a value or a clear error, never more
local trap = setmetatable({}, {__index = function() error("ran __index") end,
  __newindex = function() error("ran __newindex") end, __len = function() error("ran __len") end,
  __pairs = function() error("ran __pairs") end, __tostring = function() error("ran __tostring") end})
local ok, s = pcall(json.encode, {trap, a = trap})
assert(ok and s:find("{}", 1, true), tostring(s))
for _, v in ipairs({print, coroutine.create(print), 0/0, 1/0, -1/0}) do
  local ok2, err = pcall(json.encode, v)
  assert(not ok2 and type(err) == "string", "encode accepted a " .. type(v))
end
assert(json.encode("a\0b") == "\"a\\u0000b\"")
for _, v in ipairs({trap, print, true, 12}) do
  local ok3, r, err = pcall(json.decode, v)
  assert(not ok3 or r ~= nil or err, "decode")
end
assert(json.decode("\"a\\u0000b\"") == "a\0b")
