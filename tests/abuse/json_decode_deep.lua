-- expect: ok
-- nesting past the limit is an error value, not a C stack overflow
local v, err = json.decode(string.rep("[", 100000))
assert(v == nil and err:find("too many nested", 1, true), err)
v, err = json.decode(string.rep("{\"a\":", 100000))
assert(v == nil and err, "deep objects")
