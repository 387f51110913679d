-- expect: quota:memory quota:instructions quota:time
local s = string.rep("a", 100000)
s = s:gsub("a", string.rep("b", 1000))
