-- expect: quota:instructions quota:time
for m in string.gmatch(string.rep("a", 20000), "a-a-a-a-b") do end
