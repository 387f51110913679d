-- expect: error
-- msg: headers over the policy's bound
-- Many headers of the largest allowed value, set in a loop.
local s = string.rep("x", 8000)
for i = 1, 100000 do ngx.header["X-" .. i] = s end
ngx.header["X-Escaped"] = "1"
