-- expect: error
-- msg: C stack overflow
-- ngx.re.gsub callback calling ngx.re.gsub again
local function f() return (ngx.re.gsub("a", "a", f)) end
f()
