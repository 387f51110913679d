-- expect: quota:instructions quota:time
local s = string.rep("ab", 524288)
while true do pcall(ngx.re.match, s, "(a|b)*c", "jo") end
