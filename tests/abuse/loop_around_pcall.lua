-- expect: quota:instructions quota:time
-- each trip caught by pcall must not buy more time
while true do pcall(function() while true do end end) end
