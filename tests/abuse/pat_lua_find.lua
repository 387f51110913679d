-- expect: quota:instructions quota:time
string.find(string.rep("a", 20000), ".-.-.-.-b")
