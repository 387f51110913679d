-- expect: error
-- msg: cannot change a protected metatable
-- the API's tables keep their metatables: replacing that of ngx.var is refused
setmetatable(ngx.var, {__index = function() return "forged" end})
