-- expect: quota:instructions quota:time
-- a plain error whose handler loops (no trip before the handler runs)
xpcall(function() error("x") end, function() while true do end end)
ngx.header["X-Escaped"] = "1"
