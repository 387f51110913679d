-- expect: error
-- no function can turn a string of bytecode into code
local f = (load or loadstring)("\27LJ\2")
