-- expect: quota:instructions quota:time
-- empty pairs are never stored, yet every byte is read and charged
local s = string.rep("&", 1048576)
while true do pcall(ngx.decode_args, s, 0) end
