-- expect: error
-- msg: dofile
dofile("/etc/passwd")
