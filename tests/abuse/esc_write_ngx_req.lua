-- expect: error
-- msg: read-only
ngx.req.get_headers = function() return {} end
