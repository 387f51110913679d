-- expect: quota:instructions quota:time
-- safe_add until the dictionary is full, then on and on: "no memory" costs its work too.
local d = ngx.shared.d
local v = string.rep("y", 1000)
local i = 0
while true do
    i = i + 1
    d:safe_add("a" .. i, v)
end
