-- expect: error
-- msg: bad "zone" argument
-- A method called with a table that is not the dictionary's own.
local d = ngx.shared.d
local ok, err = pcall(d.get, {}, "k")
assert(not ok and err:find('bad "zone" argument', 1, true))
ok, err = pcall(d.set, setmetatable({}, {__index = d}), "k", 1)
assert(not ok and err:find('bad "zone" argument', 1, true))
ok = pcall(d.get, "d", "k")
assert(not ok)
ok = pcall(d.get, nil, "k")
assert(not ok)
assert(getmetatable(d) == false and getmetatable(ngx.shared) == false)
assert(not pcall(function() ngx.shared.d = {} end))
assert(not pcall(function() d.get = print end))
d.get({}, "k")
