-- expect: quota:instructions quota:time quota:memory
-- every match, capture and replacement byte is charged
local s = string.rep("a", 1048576)
while true do pcall(ngx.re.gsub, s, "a", "$0$0") end
