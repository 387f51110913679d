-- expect: quota:instructions quota:time
local s = string.rep("a", 1048576)
while true do pcall(ngx.md5_bin, s) end
