-- expect: quota:instructions quota:time
-- Fills a shared dictionary in a loop: eviction keeps it within its size, every set is
-- charged, and the loop ends on the quota.
local d = ngx.shared.d
local v = string.rep("x", 200)
local i = 0
while true do
    i = i + 1
    d:set("k" .. i, v)
end
