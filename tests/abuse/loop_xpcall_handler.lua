-- expect: quota:instructions quota:time
xpcall(function() error("x") end, function() while true do end end)
while true do end
