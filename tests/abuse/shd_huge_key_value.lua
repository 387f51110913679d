-- expect: ok
-- A 1 MB key is refused ("key too long"); a 1 MB value does not fit a 1 MB dictionary ("no
-- memory"); neither is copied anywhere, and the dictionary stays usable.
local d = ngx.shared.d
local mb = string.rep("k", 1024 * 1024)
local ok, err = d:set(mb, 1)
assert(ok == false and err == "key too long", tostring(err))
local v, e2 = d:get(mb)
assert(v == nil and e2 == "key too long")
ok, err = d:set("big", mb)
assert(ok == false and err == "no memory", tostring(err))
assert(d:incr(mb, 1, 0) == nil)
assert(d:set("small", "v") == true and d:get("small") == "v")
