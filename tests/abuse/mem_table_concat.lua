-- expect: quota:memory
local t = {}
for i = 1, 100 do t[i] = string.rep("x", 100000) end
local s = table.concat(t)
