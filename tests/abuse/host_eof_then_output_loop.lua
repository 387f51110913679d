-- expect: quota:instructions quota:time
-- phase: content
-- After ngx.eof, output of 1 MB in a loop: each call gives nil, "seen eof" without building
-- the output, nothing reaches the host, and the loop ends on the quota.
assert(ngx.eof() == 1)
local big = string.rep("x", 1024 * 1024)
while true do
  local ok, err = ngx.say(big, big)
  assert(ok == nil and err == "seen eof")
  ok, err = ngx.eof()
  assert(ok == nil and err == "seen eof")
  assert(not pcall(ngx.eof, big))
end
