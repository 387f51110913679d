-- expect: quota:instructions quota:time
-- sleeps under pcall in a loop: pcall neither hides the quota nor renews it
while true do pcall(ngx.sleep, 0) end
