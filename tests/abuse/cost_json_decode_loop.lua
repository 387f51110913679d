-- expect: quota:instructions quota:time
local s = "\"" .. string.rep("a", 800000) .. "\""
while true do pcall(json.decode, s) end
