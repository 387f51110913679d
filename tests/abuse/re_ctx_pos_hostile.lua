-- expect: ok
-- ctx.pos past the end, negative, huge, NaN, inside a character, or behind a metamethod
local s = "h\195\169llo"
for _, p in ipairs({0, -1, -2^53, 2^53, 1/0, -1/0, 0/0, 1e300, 7, 100, 1.5, "3", true}) do
  local ctx = {pos = p}
  local m, err = ngx.re.match(s, "l+", "u", ctx)
  local f, t = ngx.re.find(s, "l+", "U", {pos = p})
end
local m, err = ngx.re.match(s, ".", "u", {pos = 3})
assert(m == nil and err and err:find("UTF", 1, true), tostring(err))
local trap = setmetatable({}, {__index = function() error("ran __index") end,
  __newindex = function() error("ran __newindex") end})
local m2 = ngx.re.match("abc", "b", "", trap)
assert(m2[0] == "b" and rawget(trap, "pos") == 3)
