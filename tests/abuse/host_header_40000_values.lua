-- expect: error
-- msg: values for one header
-- One string, 40,000 references: 320 MB once the host copies each.
local s, t = string.rep("x", 8000), {}
for i = 1, 40000 do t[i] = s end
ngx.header["X-Big"] = t
ngx.header["X-Escaped"] = "1"
