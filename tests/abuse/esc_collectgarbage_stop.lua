-- expect: error
-- msg: collectgarbage
collectgarbage("stop")
