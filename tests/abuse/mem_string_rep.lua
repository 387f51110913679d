-- expect: quota:memory
local s = string.rep("x", 1e9)
