-- expect: ok quota:time quota:instructions
-- PCRE2 catastrophic backtracking: a match limit or the time quota stops it
local m, err = ngx.re.match(string.rep("a", 40), "^(a+)+$b")
ngx.log(ngx.INFO, tostring(err))
