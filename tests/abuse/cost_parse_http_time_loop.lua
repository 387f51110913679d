-- expect: quota:instructions quota:time
-- no comma and no space: the reader scans the whole megabyte looking for the week day's end
local s = string.rep("a", 1048576)
while true do pcall(ngx.parse_http_time, s) end
