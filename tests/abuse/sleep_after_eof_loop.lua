-- expect: quota:instructions quota:time
-- phase: content
-- After ngx.eof the answer goes out as the call sleeps, and a client that leaves no longer
-- ends the request: a loop of sleeps then must still end. The instructions left carry over
-- every sleep, so it ends on the quota (and the policy bounds the time asleep).
ngx.say("served")
assert(ngx.eof() == 1)
while true do ngx.sleep(0) end
