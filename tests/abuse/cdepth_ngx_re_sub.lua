-- expect: error
-- msg: C stack overflow
-- ngx.re.sub callback calling ngx.re.sub again
local function f() return (ngx.re.sub("a", "a", f)) end
f()
