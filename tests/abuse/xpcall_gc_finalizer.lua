-- expect: ok
-- a __gc on a table never runs (LuaJIT runs finalizers with the hook off; only userdata have
-- them, and a plugin cannot make a userdata): garbage made in bulk must not start the loop
for i = 1, 200 do
  setmetatable({}, {__gc = function() ngx.header["X-Escaped"] = "1" while true do end end})
end
local keep = {}
for i = 1, 4000 do keep[i % 100] = {i} end
