-- expect: quota:instructions quota:time
local s = string.rep("a", 1048576)
while true do pcall(ngx.sha1_bin, s) end
