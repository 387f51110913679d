-- expect: error
-- msg: load
load("return 1")
