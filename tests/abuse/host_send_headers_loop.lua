-- expect: quota:instructions quota:time
-- phase: content
-- ngx.send_headers again and again, with header and status changes after it (refused, logged
-- within the log bounds; past the policy's header bytes, an error the loop catches): 1 each
-- time, and the loop ends on the quota.
assert(ngx.send_headers() == 1)
while true do
  assert(ngx.send_headers("ignored", {}) == 1)
  pcall(function() ngx.header["X-Late"] = string.rep("l", 1000) end)
  ngx.status = 500
end
