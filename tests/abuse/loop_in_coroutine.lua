-- expect: quota:instructions quota:time
local co = coroutine.wrap(function() while true do end end)
co()
