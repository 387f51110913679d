-- expect: quota:instructions quota:time
-- a handler that returns normally after the trip: the abort is raised again
for i = 1, 3 do
  xpcall(function() while true do end end, function(e) return "swallowed" end)
end
ngx.header["X-Escaped"] = "1"
