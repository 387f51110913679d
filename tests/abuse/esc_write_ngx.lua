-- expect: error
-- msg: read-only
ngx.say = function() end
