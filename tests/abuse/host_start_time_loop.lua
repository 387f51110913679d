-- expect: quota:instructions quota:time
-- ngx.req.start_time in a loop, with hostile arguments it ignores: each call is an
-- instruction of the loop, and the loop ends on the quota.
local t0 = ngx.req.start_time()
while true do
  assert(ngx.req.start_time({}, string.rep("x", 100)) == t0)
end
