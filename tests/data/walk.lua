-- walk.lua - the plugin of tests/unit/test_walk.c: collects every function reachable from the
-- plugin environment (library tables, ngx and its sub-tables, metatables of what the API returns)
-- and calls each with hostile argument lists, one batch per plugin call. `__walk` is the test's
-- own C table (added by a test hook): it hands out the batch and records progress and results.
local W = __walk
local pcall, type, next, getmetatable, setmetatable, rawget, rawequal, select, unpack, tostring =
    pcall, type, next, getmetatable, setmetatable, rawget, rawequal, select, unpack, tostring
local sort, concat = table.sort, table.concat
local co_create, co_resume, co_status = coroutine.create, coroutine.resume, coroutine.status
local clock, find = os.clock, string.find
local floor, min, max = math.floor, math.min, math.max

local phase, start, limit, budget_ms, want_names = W.job()
if limit == 0 then
    return
end
assert(phase == ngx.get_phase(), "the walk runs in another phase than its job's")
local ENV = _G

-- ---- the hostile values (built once per state: the walk keeps them between calls) ----

local S = rawget(ENV, "__walk_state")
if not S then
    S = {}
    local function try(f, ...)  -- a denying policy may refuse what the walk builds with
        local ok, v = pcall(f, ...)
        if ok then return v end
    end
    local MB = "x"
    for _ = 1, 20 do MB = MB .. MB end
    local HUGE_N = 50000
    local function huge_array()
        local t = {}
        for i = 1, HUGE_N do t[i] = i end
        return t
    end
    local function nested(depth)
        local t = {}
        for _ = 1, depth do t = {t} end
        return t
    end
    local function err_mt()
        local function boom() error("metamethod error") end
        return setmetatable({}, {__index = boom, __newindex = boom, __tostring = boom,
            __len = boom, __eq = boom, __lt = boom, __le = boom, __concat = boom,
            __call = boom, __unm = boom, __add = boom})
    end
    local function loop_mt()
        -- every metamethod leads back to itself: a chain loop or unbounded recursion, which
        -- must end in an error
        local t, mt = {}, {}
        mt.__index = t
        mt.__newindex = t
        mt.__tostring = function(x) local s = tostring(x) return s end
        mt.__len = function(x) local n = #x + 1 return n end
        mt.__eq = function(a, b) local r = a == b return r end
        mt.__lt = function(a, b) local r = a < b return r end
        mt.__concat = function(a, b) local r = a .. b return r end
        mt.__call = function(x, ...) local r = x(...) return r end
        return setmetatable(t, mt)
    end
    local function spin_mt()
        -- every metamethod tail-calls itself: loops that only the quota ends
        local t, mt = {}, {}
        mt.__tostring = function(x) return tostring(x) end
        mt.__call = function(x, ...) return x(...) end
        mt.__index = function(x, k) return x[k] end
        mt.__newindex = function(x, k, v) x[k] = v end
        mt.__concat = function(a, b) return a .. b end
        mt.__eq = function() while true do end end
        mt.__lt = mt.__eq
        mt.__le = mt.__eq
        return setmetatable(t, mt)
    end
    local function bad_tostring()
        return setmetatable({}, {__tostring = function() return {} end})
    end
    local function cyclic()
        local t = {1, 2}
        t.self = t
        t[3] = t
        return t
    end
    local suspended = co_create(function(...)
        local a = {...}
        while true do a = {coroutine.yield(unpack(a))} end
    end)
    co_resume(suspended, 1)
    local dead = co_create(function() end)
    co_resume(dead)
    local hdrs = try(ngx.req.get_headers)
    local gm_iter = try(function() return ngx.re.gmatch("abcabc", "(b)") end)
    local sgm_iter = try(string.gmatch, "a b c", "%a")
    local null = try(function() return json.null end)
    -- A value is v, or make() built fresh for each call (tables a call may change).
    S.values = {
        {"nil", nil}, {"true", true}, {"false", false}, {"0", 0}, {"-1", -1},
        {"2^31", 2 ^ 31}, {"2^32+1", 2 ^ 32 + 1}, {"2^53", 2 ^ 53}, {"-2^63", -2 ^ 63},
        {"1e308", 1e308}, {"NaN", 0 / 0}, {"inf", math.huge}, {"-inf", -math.huge},
        {"0.5", 0.5}, {"-0.5", -0.5}, {"1e-300", 1e-300},
        {"empty string", ""}, {"1 MB string", MB}, {"string with NUL", "a\0b\0"},
        {"CR/LF", "a\r\nX-Injected: 1\r\n\r\nbody"},
        {"invalid UTF-8", "\255\254\192\128\237\160\128\244\144"},
        {"pattern", "(%f[%w]*(()[%b%]$1%"}, {"format", "%d%s%q%c%99999999d%-1s%n%"},
        {"path", "/../..//%2e%2e/%00"}, {"number string", "12345678901234567890"},
        {"empty table", make = function() return {} end},
        {"nested table", make = function() return nested(300) end},
        {"huge array", huge = true},
        {"sparse array", make = function() return {[1] = 1, [2 ^ 31] = 2, [-1] = 3, [0.5] = 4} end},
        {"mixed table", make = function() return {1, "a", true, {}, a = 1, [false] = 2} end},
        {"cyclic table", make = cyclic},
        {"erroring metatable", make = err_mt},
        {"recursing metatable", make = loop_mt},
        {"__tostring returns a table", make = bad_tostring},
        {"print", print}, {"Lua closure", function(...) return ... end},
        {"erroring closure", function() error("closure error") end},
        {"the function itself", self = true},
        {"suspended coroutine", suspended}, {"dead coroutine", dead},
        {"ngx.var", ngx.var}, {"ngx.header", ngx.header}, {"ngx.arg", ngx.arg},
        {"ngx.req", ngx.req}, {"ngx", ngx}, {"string", string}, {"_G", ENV},
        {"get_headers()", hdrs}, {"json.null", null},
        {"ngx.re.gmatch iterator", gm_iter}, {"string.gmatch iterator", sgm_iter},
        -- used alone only (the first template): each use costs a whole quota
        {"looping metatable", make = spin_mt, spin = true},
    }
    S.MB = MB
    S.huge_array = huge_array
    S.HUGE_N = HUGE_N
    S.huge = huge_array()
    ENV.__walk_state = S
end

-- ---- the walk: every function reachable, by path ----

local found = S.found
local NAMES = {
    string = {"byte", "char", "dump", "find", "format", "gmatch", "gsub", "len", "lower", "match",
        "rep", "reverse", "sub", "upper"},
    table = {"concat", "foreach", "foreachi", "getn", "insert", "maxn", "move", "remove", "sort",
        "new", "clear", "pack", "unpack"},
    math = {"abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor",
        "fmod", "frexp", "ldexp", "log", "log10", "max", "min", "mod", "modf", "pow", "rad",
        "random", "randomseed", "sin", "sinh", "sqrt", "tan", "tanh"},
    bit = {"arshift", "band", "bnot", "bor", "bswap", "bxor", "lshift", "rol", "ror", "rshift",
        "tobit", "tohex"},
    coroutine = {"create", "isyieldable", "resume", "running", "status", "wrap", "yield"},
    os = {"time", "clock", "date", "execute", "getenv", "exit", "remove", "rename", "tmpname",
        "difftime", "setlocale"},
    json = {"encode", "decode", "null"},
    -- ngx.shared and its dictionaries: read-only proxies too
    ["ngx.shared"] = {"walk", "undeclared"},
    ["ngx.shared.walk"] = {"get", "set", "safe_set", "add", "safe_add", "replace", "delete",
        "incr", "ttl", "expire", "flush_all", "get_keys", "free_space", "capacity"},
    -- a read-only proxy: its keys are not listed by next()
    ["ngx.config"] = {"prefix", "nginx_configure", "subsystem", "debug", "nginx_version",
        "ngx_lua_version"},
}
-- Names a plugin author would try: none of them may bring anything unsafe.
local PROBES = {
    "load", "loadstring", "loadfile", "dofile", "require", "module", "getfenv", "setfenv",
    "newproxy", "gcinfo", "debug", "io", "ffi", "jit", "package", "_VERSION",
    "ngx.resp", "ngx.resp.get_headers", "ngx.send_headers", "ngx.headers_sent", "ngx.eof",
    "ngx.quote_sql_str", "ngx.parse_http_time", "ngx.cookie_time", "ngx.localtime",
    "ngx.utctime", "ngx.update_time", "ngx.null", "ngx.req.start_time", "ngx.req.http_version",
    "ngx.req.is_internal", "ngx.req.set_method", "ngx.req.read_body", "ngx.req.get_body_data",
    "ngx.req.get_post_args", "ngx.crc32_short", "ngx.hmac_sha1", "ngx.worker.count",
    "ngx.worker.exiting", "ngx.config", "ngx.shared", "ngx.sleep", "ngx.location", "ngx.socket",
    "ngx.timer", "ngx.thread", "ngx.on_abort", "ngx.exec", "ngx.get_phase", "ngx.ctx",
    "ngx.status",
}
-- Functions that end the plugin call when they succeed: walked last.
local TERMINAL = {["ngx.exit"] = true, ["ngx.redirect"] = true, ["ngx.req.set_uri"] = true}
local function noop() end
-- Plausible arguments, for calls that bring back values to inspect and as the base of
-- the hostile argument lists.
local PLAUSIBLE = {
    ["ngx.re.match"] = {"abcabc", "(b)(?<n>c)"}, ["ngx.re.find"] = {"abc", "b", "jd"},
    ["ngx.re.gmatch"] = {"abcabc", "(b)"}, ["ngx.re.sub"] = {"abc", "(b)", "[$1]"},
    ["ngx.re.gsub"] = {"abcb", "b", "x"},
    ["string.find"] = {"abc", "b"}, ["string.match"] = {"abc", "(b)"},
    ["string.gmatch"] = {"a b", "%a"}, ["string.gsub"] = {"abc", "b", "%0%0"},
    ["string.format"] = {"%s %d %q", "a", 1, "q"}, ["string.rep"] = {"ab", 3, ","},
    ["string.sub"] = {"abc", 2, 3}, ["string.byte"] = {"abc", 1, 2}, ["string.char"] = {65, 66},
    ["table.concat"] = {{"a", "b"}, ","}, ["table.insert"] = {{1}, 1, 2},
    ["table.remove"] = {{1, 2}, 1}, ["table.sort"] = {{3, 1, 2}}, ["table.maxn"] = {{1}},
    ["table.getn"] = {{1}}, ["table.foreach"] = {{1}, noop}, ["table.foreachi"] = {{1}, noop},
    ["table.move"] = {{1, 2}, 1, 2, 1, {}},
    ["ngx.req.set_header"] = {"X-Walk", "1"}, ["ngx.req.clear_header"] = {"X-Walk"},
    ["ngx.req.set_uri_args"] = {"a=1"}, ["ngx.req.set_uri"] = {"/walk"},
    ["ngx.req.get_headers"] = {10}, ["ngx.req.get_uri_args"] = {10},
    ["ngx.log"] = {ngx.ERR, "walk"}, ["ngx.say"] = {"x"}, ["ngx.print"] = {"x"},
    ["ngx.exit"] = {200}, ["ngx.redirect"] = {"/walk", 302},
    ["ngx.http_time"] = {0}, ["ngx.encode_base64"] = {"abc"}, ["ngx.decode_base64"] = {"YWJj"},
    ["ngx.md5"] = {"a"}, ["ngx.md5_bin"] = {"a"}, ["ngx.sha1_bin"] = {"a"},
    ["ngx.crc32_long"] = {"a"}, ["ngx.crc32_short"] = {"a"}, ["ngx.hmac_sha1"] = {"k", "s"},
    ["ngx.quote_sql_str"] = {"a'b"}, ["ngx.parse_http_time"] = {"Thu, 18 Nov 2010 11:27:35 GMT"},
    ["ngx.cookie_time"] = {0}, ["ngx.escape_uri"] = {"a b"}, ["ngx.unescape_uri"] = {"a%20b"},
    ["ngx.encode_args"] = {{a = 1, b = {"x", "y"}}}, ["ngx.decode_args"] = {"a=1&b&a=2", 10},
    ["json.encode"] = {{a = {1, 2}, b = "x"}}, ["json.decode"] = {'{"a":[1,2,{}],"b":null}'},
    ["os.date"] = {"*t", 0}, ["os.time"] = {{year = 2020, month = 1, day = 1}},
    ["coroutine.wrap"] = {noop}, ["coroutine.create"] = {noop},
    ["pairs"] = {{a = 1}}, ["ipairs"] = {{1}}, ["next"] = {{a = 1}}, ["select"] = {"#", 1},
    ["tostring"] = {{}}, ["tonumber"] = {"10", 16}, ["unpack"] = {{1, 2}},
    ["collectgarbage"] = {"count"}, ["setmetatable"] = {{}, {}}, ["getmetatable"] = {{}},
    ["rawget"] = {{a = 1}, "a"}, ["rawset"] = {{}, "a", 1}, ["rawequal"] = {1, 1},
    ["pcall"] = {noop}, ["xpcall"] = {noop, noop}, ["assert"] = {true}, ["type"] = {1},
    ["error"] = {"walk"}, ["print"] = {"walk"},
    ["ngx.resp.get_headers"] = {10}, ["ngx.req.set_method"] = {ngx.HTTP_POST},
}
local METAMETHODS = {"__index", "__newindex", "__call", "__tostring", "__len", "__eq", "__lt",
    "__le", "__concat", "__unm", "__add", "__sub", "__mul", "__div", "__mod", "__pow", "__gc",
    "__mode", "__metatable", "__pairs", "__ipairs"}

if not found then
    W.log("enumeration starts")
    local byfn = {}     -- function -> {path, base args}
    local visited = {[W] = true, [S] = true, [ENV] = true}  -- tables, userdata, threads seen
    local function index(t, k)
        local ok, v = pcall(function() return t[k] end)
        if ok then return v end
    end
    local visit
    local function add_fn(path, f, base)
        local e = byfn[f]
        if not e then
            byfn[f] = {path, base}
        elseif path < e[1] then
            e[1] = path
            e[2] = e[2] or base
        end
    end
    -- Calls f plausibly and walks what comes back.
    local function probe_call(path, f, args, depth)
        local r = {pcall(f, unpack(args, 1, args.n or #args))}
        if r[1] then
            for i = 2, #r do visit(path .. "()#" .. (i - 1), r[i], depth + 1) end
        end
    end
    local function sorted_keys(t)
        local keys, ok = {}, true
        ok = pcall(function()
            for k in next, t do
                local kt = type(k)
                if kt == "string" or kt == "number" or kt == "boolean" then
                    keys[#keys + 1] = k
                end
                if #keys > 200 then break end
            end
        end)
        sort(keys, function(a, b) return tostring(a) < tostring(b) end)
        return keys
    end
    function visit(path, v, depth, owner, key)
        if depth > 6 then return end
        local tv = type(v)
        if tv == "function" then
            local base
            if key == "__index" then base = {owner, "host"}
            elseif key == "__newindex" then base = {owner, "x_walk", "1"}
            elseif key then base = {owner, "a"} end
            if type(owner) == "table" and key and find(path, "<mt>", 1, true) then
                base = base or {owner}
            end
            add_fn(path, v, PLAUSIBLE[path] or base)
            if not TERMINAL[path] and depth < 4 and not byfn[v].probed then
                byfn[v].probed = true
                probe_call(path, v, PLAUSIBLE[path] or base or {}, depth)
            end
            return
        end
        if tv ~= "table" and tv ~= "userdata" and tv ~= "thread" then return end
        if visited[v] then return end
        visited[v] = true
        if tv == "table" then
            for _, k in ipairs(sorted_keys(v)) do
                local ok, x = pcall(rawget, v, k)
                if ok then visit(path .. "." .. tostring(k), x, depth + 1) end
            end
            for _, k in ipairs(NAMES[path] or {}) do
                visit(path .. "." .. k, index(v, k), depth + 1)
            end
        end
        local ok, mt = pcall(getmetatable, v)
        if ok and type(mt) == "table" then
            local mpath = path .. "<mt>"
            visited[mt] = true
            for _, k in ipairs(sorted_keys(mt)) do
                visit(mpath .. "." .. tostring(k), rawget(mt, k), depth + 1, v, k)
            end
            for _, k in ipairs(METAMETHODS) do
                visit(mpath .. "." .. k, rawget(mt, k), depth + 1, v, k)
            end
        end
    end

    -- every name: the environment's own keys, the API's names, the library tables
    local names = W.names()
    for lib, list in pairs(NAMES) do
        names[#names + 1] = lib
        for _, k in ipairs(list) do names[#names + 1] = lib .. "." .. k end
    end
    for _, n in ipairs(PROBES) do names[#names + 1] = n end
    for _, k in ipairs(sorted_keys(ENV)) do
        if k ~= "__walk" and k ~= "__walk_state" then names[#names + 1] = tostring(k) end
    end
    sort(names)
    for _, name in ipairs(names) do
        name = name:gsub("%.%*$", "")
        local v, path = ENV, nil
        for part in name:gmatch("[^.]+") do
            if type(v) ~= "table" then v = nil break end
            v = index(v, part)
            path = path and path .. "." .. part or part
        end
        if v ~= nil and path then visit(path, v, 0) end
    end
    -- what the plugin cannot reach by name but through a value the API hands out
    visit("ngx.ctx", ngx.ctx, 1)
    visit("(''):meta", getmetatable(""), 1)
    visit("coroutine.running()", coroutine.running(), 1)
    -- properties and proxies, written and read as a plugin writes them
    local targets = {{"ngx", ngx}, {"ngx.var", ngx.var}, {"ngx.header", ngx.header},
        {"ngx.arg", ngx.arg}, {"ngx.ctx", ngx.ctx}, {"_G", ENV}, {"string", string}}
    for _, t in ipairs(targets) do
        local tt = t[2]
        add_fn("index(" .. t[1] .. ")", function(k) return tt[k] end, {"host"})
        add_fn("newindex(" .. t[1] .. ")", function(k, v) tt[k] = v end, {"x_walk", "1"})
    end
    add_fn("ngx.ctx=", function(v) ngx.ctx = v end, {{a = 1}})
    add_fn("ngx.status=", function(v) ngx.status = v end, {200})
    add_fn("tostring(v)", function(v) return tostring(v) end, {{}})
    add_fn("concat(v)", function(a, b) return a .. b end, {"a", "b"})
    add_fn("method call", function(s, k, ...) return s[k](s, ...) end, {"abc", "upper"})

    -- the list, in an order that does not depend on addresses; terminal functions last
    found = {}
    for f, e in pairs(byfn) do
        found[#found + 1] = {e[1], f, e[2], TERMINAL[e[1]] and 1 or 0}
    end
    sort(found, function(a, b)
        if a[4] ~= b[4] then return a[4] < b[4] end
        return a[1] < b[1]
    end)
    S.found = found
    W.log("enumeration done")
end

-- ---- the hostile argument lists ----

local V = S.values
local NV = #V
local V2 = {}  -- the values of the other templates
for i = 1, NV do
    if not V[i].spin then V2[#V2 + 1] = V[i] end
end
local NV2 = #V2
-- Templates: a base list and the position a hostile value takes in it.
local GENERIC = {{{}, 1}, {{"abc"}, 2}, {{"abc", "b"}, 3}, {{nil, "a", "b", n = 3}, 1},
    {{"abc", "b", "c"}, 4}}
local function templates(e)
    if e.tpl then return e.tpl end
    local tpl = {}
    for i = 1, #GENERIC do tpl[i] = GENERIC[i] end
    -- a function that ends the call gets the generic lists only: each success is a request
    local base = e[4] == 0 and e[3]
    if base then
        local n = base.n or #base
        for p = 1, min(n + 1, 4) do tpl[#tpl + 1] = {base, p} end
    end
    e.tpl = tpl
    return tpl
end
-- Two more lists: many arguments (as many as a call can take), plain, then mixed.
local MANY = 7000
local function ncalls(e)
    return 1 + NV + (#templates(e) - 1) * NV2 + 2
end
local total = 0
for i = 1, #found do
    found[i].first = total
    total = total + ncalls(found[i])
end

if want_names then
    for i = 1, #found do W.fn(i, found[i][1], found[i].first, ncalls(found[i])) end
end

local function value(spec, f)
    if spec.make then return spec.make() end
    if spec.self then return f end
    if spec.huge then return S.huge end
    return spec[2]
end

-- The huge array is kept between calls: rebuilt when a call changed it.
local function check_huge()
    local t = S.huge
    if getmetatable(t) ~= nil or rawget(t, 1) ~= 1 or rawget(t, S.HUGE_N) ~= S.HUGE_N
        or rawget(t, S.HUGE_N + 1) ~= nil or next(t, S.HUGE_N) ~= nil then
        S.huge = S.huge_array()
    end
end

local args = {}
-- Builds the arguments of call number a of entry e; returns their count.
local function build(e, a)
    if a == 0 then return 0, false, 0, "" end
    local nc = ncalls(e)
    if a >= nc - 2 then
        local mixed = a == nc - 1
        for i = 1, MANY do
            local r = i % 4
            args[i] = not mixed and "x" or r == 0 and i or r == 1 and {} or r == 2 and "\r\n" or nil
        end
        return MANY, false, 1, mixed and "and more: mixed values" or "and more: strings"
    end
    a = a - 1
    local tpl, spec
    if a < NV then
        tpl, spec = templates(e)[1], V[a + 1]
    else
        a = a - NV
        tpl, spec = templates(e)[floor(a / NV2) + 2], V2[a % NV2 + 1]
    end
    local base, pos = tpl[1], tpl[2]
    local n = max(base.n or #base, pos)
    for i = 1, n do args[i] = base[i] end
    args[pos] = value(spec, e[2])
    return n, spec.huge, pos, spec[1]
end

local QUOTA_HALF = W.left() / 2
local stats = {calls = 0}
local deadline = clock() + budget_ms / 1000
local next_k = start

local function batch()
    -- find the entry holding call number start
    local i = 1
    while i <= #found and found[i].first + ncalls(found[i]) <= start do i = i + 1 end
    local k, stop = start, start + limit
    while i <= #found and k < stop do
        local e = found[i]
        local a = k - e.first
        local n, huge, pos, vname = build(e, a)
        W.at(k, i, a, n, pos, vname)
        local ok, msg = pcall(e[2], unpack(args, 1, n))
        stats.calls = stats.calls + 1
        W.res(ok, not ok and type(msg) == "string" and find(msg, "denied by policy", 1, true))
        if huge then check_huge() end
        k = k + 1
        next_k = k
        if a + 1 >= ncalls(e) then i = i + 1 end
        if clock() > deadline or W.left() < QUOTA_HALF then break end
    end
end

-- The batch runs in a coroutine of its own: a hostile call that yields suspends it, and it is
-- resumed until it ends.
local co = co_create(batch)
local guard = 0
while co_status(co) == "suspended" and guard < 100000 do
    co_resume(co)
    guard = guard + 1
end
-- what the calls left in ngx.ctx would fail the call's end: the request gets a clean one
pcall(function() ngx.ctx = {} end)
W.done(next_k, #found, total, stats.calls)
