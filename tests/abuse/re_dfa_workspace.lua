-- expect: ok
-- a DFA pattern whose active states overflow the matcher's workspace: the workspace is fixed
-- (it never grows with the pattern), the match fails with an error, nothing else happens
local p = string.rep("a?", 3000) .. string.rep("a", 3000)
for _ = 1, 20 do
    local from, to, err = ngx.re.find(string.rep("a", 3000), p, "d")
    assert(from == nil and err and err:find("workspace size exceeded", 1, true), tostring(err))
end
local m, err = ngx.re.match(string.rep("a", 3000), p, "d")
assert(m == nil and err:find("workspace size exceeded", 1, true), tostring(err))
