-- expect: error
-- msg: headers over the policy's bound
-- Header names that need no change are read in place, not copied: long ones, set in a loop,
-- still count against what one call may hand to the host.
local n = string.rep("N", 60000)
for i = 1, 100000 do ngx.header[n .. i] = "v" end
ngx.header["X-Escaped"] = "1"
