-- expect: quota:instructions quota:time
-- a coroutine that trips inside returns false to resume; the trip must still end the call
for i = 1, 100 do coroutine.resume(coroutine.create(function() while true do end end)) end
ngx.header["X-Escaped"] = "yes"
