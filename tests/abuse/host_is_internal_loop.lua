-- expect: quota:instructions quota:time
-- ngx.req.is_internal in a loop under pcall: a boolean each time, and the loop ends on the quota.
while true do
  local ok, v = pcall(ngx.req.is_internal, coroutine.create(print))
  assert(ok and v == false)
end
