-- expect: quota:instructions quota:time
-- ngx.req.http_version in a loop: the same answer each time, and the loop ends on the quota.
local v = ngx.req.http_version()
assert(v == 1.1, tostring(v))
while true do
  assert(ngx.req.http_version(ngx, print) == v)
end
