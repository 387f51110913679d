-- expect: quota:instructions quota:time
-- the entry coroutine yielding forever: each round is resumed at once, under the same quotas
while true do coroutine.yield() end
