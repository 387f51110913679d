-- expect: error
-- msg: setfenv
setfenv(1, {})
