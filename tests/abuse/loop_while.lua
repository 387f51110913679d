-- expect: quota:instructions quota:time
while true do end
