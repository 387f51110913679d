-- expect: error
-- msg: getfenv
getfenv(0)
