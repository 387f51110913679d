-- expect: error
-- msg: C stack overflow
-- __tostring reached from ngx.log, logging itself
local t = setmetatable({}, {__tostring = function(x) ngx.log(ngx.ERR, x) return "x" end})
ngx.log(ngx.ERR, t)
