-- expect: quota:instructions quota:time
-- Request readers in a loop: each read is charged by what it reads.
while true do
  ngx.req.get_headers()
  ngx.req.get_uri_args()
  local _ = ngx.var.request_uri
  local _ = ngx.req.get_method()
end
