-- expect: quota:instructions quota:time
-- a megabyte of quotes doubles when escaped: every call is charged for both passes
local s = string.rep("'", 1048576)
while true do pcall(ngx.quote_sql_str, s) end
