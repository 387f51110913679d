-- expect: error
-- msg: debug
debug.getinfo(1)
