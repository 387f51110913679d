-- expect: quota:instructions quota:time
-- DFA matching ("d") of a subject where every start position runs to the end: each search
-- costs the subject's length squared, and the steps are charged as for the other matches
local s = string.rep("a", 1048576)
while true do pcall(ngx.re.find, s, "(?:a|aa|aaa)*[bc]", "d") end
