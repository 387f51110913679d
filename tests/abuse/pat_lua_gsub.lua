-- expect: quota:instructions quota:time
string.gsub(string.rep("a", 20000), ".-.-.-b", "x")
