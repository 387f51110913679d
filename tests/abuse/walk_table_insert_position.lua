-- expect: ok
-- Found by the all-functions walk: table.insert with a position below 1 (2^31 is one once made
-- an int) shifted elements in C from #t down to it, up to 2^31 steps that no quota saw. Such a
-- position is an error; the usual forms still work.
local t = {1, 2}
for _, pos in ipairs({0, -1, 2 ^ 31, 2 ^ 32 + 1, -2 ^ 63, 0 / 0, -math.huge}) do
    local ok, err = pcall(table.insert, t, pos, "x")
    assert(not ok and err:find("position out of bounds"), tostring(pos) .. ": " .. tostring(err))
end
assert(#t == 2)
table.insert(t, 1, "a")
table.insert(t, "z")
table.insert(t, #t + 1, "end")
assert(t[1] == "a" and t[2] == 1 and t[4] == "z" and t[5] == "end" and #t == 5)
