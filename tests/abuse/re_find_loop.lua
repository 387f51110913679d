-- expect: quota:instructions quota:time
-- a search that finds nothing passed over the whole subject: charged per byte
local s = string.rep("a", 1048576)
while true do pcall(ngx.re.find, s, "b") end
