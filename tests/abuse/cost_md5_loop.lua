-- expect: quota:instructions quota:time
-- a digest of a megabyte is charged per byte: a loop of them meets the quota at once
local s = string.rep("a", 1048576)
while true do pcall(ngx.md5, s) end
