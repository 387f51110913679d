-- expect: quota:instructions quota:time
local t = {a = string.rep("x", 1048576)}
while true do pcall(ngx.encode_args, t) end
