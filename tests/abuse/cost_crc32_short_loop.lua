-- expect: quota:instructions quota:time
local s = string.rep("a", 1048576)
while true do pcall(ngx.crc32_short, s) end
