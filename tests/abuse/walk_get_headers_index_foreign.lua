-- expect: ok
-- Found by the all-functions walk: the __index of a get_headers() table, called with a string
-- where its table goes, did raw reads of the string as a table (a crash, or memory the plugin
-- chooses). It must be a Lua error, or the metatable must not be reachable at all.
local mt = getmetatable(ngx.req.get_headers())
if type(mt) == "table" and mt.__index then
    for _, v in ipairs({"crafted string read as a table", 42, true, print}) do
        local ok, err = pcall(mt.__index, v, "user-agent")
        assert(not ok and tostring(err):find("table expected"), tostring(err))
    end
end
