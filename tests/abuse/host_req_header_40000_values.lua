-- expect: error
-- msg: values for one header
local s, t = string.rep("x", 8000), {}
for i = 1, 40000 do t[i] = s end
ngx.req.set_header("X-Big", t)
ngx.header["X-Escaped"] = "1"
