-- expect: ok
-- every ngx.re function with foreign arguments: a value or a clear error, never more
local trap = setmetatable({}, {__index = function() error("ran __index") end,
  __tostring = function() error("ran __tostring") end, __len = function() error("ran __len") end})
local vals = {nil, true, 0/0, 1/0, -1, 2^63, "", "a\0b", string.rep("(", 3000), {}, trap,
              print, coroutine.create(print), json.null}
local fns = {ngx.re.match, ngx.re.find, ngx.re.gmatch, ngx.re.sub, ngx.re.gsub}
local base = {"abc", "b", "x", "jo", nil}
for _, f in ipairs(fns) do
  for pos = 1, 5 do
    for i = 1, 14 do
      local args = {base[1], base[2], base[3], base[4], base[5]}
      args[pos] = vals[i]
      local ok, r = pcall(f, args[1], args[2], args[3], args[4], args[5])
      if ok and type(r) == "function" then pcall(r, trap, 0/0) end
    end
  end
end
