-- expect: quota:instructions quota:time
-- phase: content
-- ngx.headers_sent read and written in a loop under pcall: reads are booleans, writes are
-- refused (the ngx table is read-only), and the loop ends on the quota.
while true do
  assert(type(ngx.headers_sent) == "boolean")
  assert(not pcall(function() ngx.headers_sent = false end))
end
