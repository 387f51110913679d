-- expect: quota:instructions quota:time
-- handlers that call xpcall again with looping handlers
local function h() xpcall(function() while true do end end, h) while true do end end
xpcall(function() while true do end end, h)
ngx.header["X-Escaped"] = "1"
