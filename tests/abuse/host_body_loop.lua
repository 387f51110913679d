-- expect: quota:instructions quota:time
-- The request body functions in a loop: the same answers each time, and the loop ends on the
-- quota (each call is charged).
ngx.req.read_body()
while true do
  ngx.req.read_body()
  assert(ngx.req.get_body_data() == nil)
  assert(next(ngx.req.get_post_args()) == nil)
end
