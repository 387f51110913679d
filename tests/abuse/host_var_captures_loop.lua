-- expect: quota:instructions quota:time
-- numeric ngx.var[N] in a loop over every kind of number: each read is charged, none crashes
local keys = {1, 2, 0, -1, 1.5, 65535, 65536, 2^31, -2^31, 2^53, 1e300, -1e300, 0/0, 1/0, -1/0}
local i = 0
while true do
    i = i + 1
    local v = ngx.var[keys[i % #keys + 1]]
    assert(v == nil)
end
