-- expect: error
-- msg: loadstring
loadstring("return 1")
