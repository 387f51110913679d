-- expect: quota:instructions quota:time
-- the validating scan alone is charged: an invalid last byte still costs the whole string
local s = string.rep("QUFB", 200000) .. "!"
while true do pcall(ngx.decode_base64, s) end
