-- expect: quota:instructions quota:memory quota:time
-- Many keys, then get_keys with a huge max, again and again: each call is charged by the keys
-- it walks and what it hands back is the plugin's memory.
local d = ngx.shared.d
for i = 1, 5000 do d:set(string.rep("k", 100) .. i, i) end
local keep = {}
while true do
    keep[#keep + 1] = d:get_keys(2 ^ 31)
    keep[#keep + 1] = d:get_keys(0)
end
