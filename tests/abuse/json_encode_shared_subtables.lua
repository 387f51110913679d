-- expect: quota:instructions quota:time quota:memory
-- 40 levels of a table holding its child twice: 2^40 values to write; each one is charged
local t = {}
for i = 1, 40 do t = {t, t} end
json.encode(t)
ngx.header["X-Escaped"] = "1"
