-- expect: error
-- msg: ngx.ctx holds only plain values
ngx.ctx.fn = function() return "pwned" end
