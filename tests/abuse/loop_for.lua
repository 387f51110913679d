-- expect: quota:instructions quota:time
for i = 1, math.huge do end
