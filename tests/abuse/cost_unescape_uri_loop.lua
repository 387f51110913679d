-- expect: quota:instructions quota:time
local s = string.rep("%", 1048576)
while true do pcall(ngx.unescape_uri, s) end
