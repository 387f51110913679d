-- expect: quota:instructions quota:time
-- Log lines in a loop: past the call's bound they are dropped, and the loop meets the quota.
local s = string.rep("x", 4000)
while true do ngx.log(ngx.ERR, s, "\n[emerg] forged line") end
