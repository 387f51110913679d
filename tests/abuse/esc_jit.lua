-- expect: error
-- msg: jit
jit.on()
