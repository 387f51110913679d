-- expect: error
-- msg: headers over the policy's bound
-- Header values full of control bytes, one in every 8 bytes so that no word of a value passes
-- the check whole, each escaped to three bytes, set again and again.
local v = string.rep("abcdefg\r", 250)
for i = 1, 100000 do ngx.header["X-Ctl"] = v .. i end
