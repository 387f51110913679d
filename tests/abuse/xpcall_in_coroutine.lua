-- expect: quota:instructions quota:time
-- the same inside a coroutine, and the coroutine's failure swallowed by resume
local co = coroutine.create(function()
  xpcall(function() while true do end end, function() while true do end end)
end)
coroutine.resume(co)
ngx.header["X-Escaped"] = "1"
