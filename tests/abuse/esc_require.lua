-- expect: error
-- msg: require
require("ffi")
