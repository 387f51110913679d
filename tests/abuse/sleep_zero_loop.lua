-- expect: quota:instructions quota:time
-- a loop of zero sleeps: each one yields to the host and is taken up again, and the quota
-- left carries over from piece to piece, so the loop still ends
while true do ngx.sleep(0) end
