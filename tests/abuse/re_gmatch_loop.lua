-- expect: quota:instructions quota:time
local s = string.rep("a", 1048576)
while true do for m in ngx.re.gmatch(s, "b") do end end
