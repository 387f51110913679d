-- expect: quota:instructions quota:time
-- phase: rewrite
-- Trying refused paths in a loop under pcall: each try is charged, and the loop ends.
local u = "/" .. string.rep("a/", 2000) .. ".."
while true do pcall(ngx.req.set_uri, u) end
