-- expect: error
-- msg: status code 0 to 999
ngx.exit(2147483647)
