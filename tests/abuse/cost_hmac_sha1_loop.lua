-- expect: quota:instructions quota:time
-- a megabyte key (hashed first) and a megabyte message, again and again
local s = string.rep("k", 1048576)
while true do pcall(ngx.hmac_sha1, s, s) end
