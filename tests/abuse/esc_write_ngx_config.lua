-- expect: error
-- msg: read-only
-- ngx.config's facts are read-only, as the rest of the ngx table
ngx.config.subsystem = "stream"
