-- expect: error quota:instructions quota:time
-- The same header set over and over: bounded per call, never grows without end.
local s = string.rep("x", 8000)
while true do ngx.header["X-Same"] = s end
