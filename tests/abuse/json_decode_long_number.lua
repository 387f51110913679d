-- expect: ok
-- a number of a megabyte of digits is refused after its first 512 bytes
local v, err = json.decode(string.rep("1", 1048576))
assert(v == nil and err:find("number too long", 1, true), err)
