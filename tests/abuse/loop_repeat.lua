-- expect: quota:instructions quota:time
repeat until false
