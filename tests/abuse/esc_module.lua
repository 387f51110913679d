-- expect: error
-- msg: module
module("x")
