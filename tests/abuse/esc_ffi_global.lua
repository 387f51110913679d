-- expect: error
-- msg: ffi
ffi.cdef("int x;")
