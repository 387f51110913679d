-- expect: quota:memory quota:instructions quota:time
-- ngx.resp.get_headers without a limit over 50 headers of 1 KB, every table kept: what the
-- tables hold is the plugin's memory, and the quota ends it.
local v = string.rep("v", 1000)
for i = 1, 50 do ngx.header["X-Big-" .. i] = v .. i end
local keep = {}
local i = 0
while true do
  i = i + 1
  keep[i] = ngx.resp.get_headers(0, i % 2 == 0)
end
