-- expect: ok
-- the OpenResty functions without a request, each argument replaced by hostile values: a value
-- or a clear error, never a metamethod run, never more
local ran = false
local trap = setmetatable({}, {__index = function() ran = true end,
  __tostring = function() ran = true return "x" end, __len = function() ran = true return 1 end,
  __call = function() ran = true end, __concat = function() ran = true return "x" end})
local vals = {nil, false, true, 0, -1, 0/0, 1/0, -1/0, 2^63, -2^63, 1e308, "", "\0", "a\0b",
  string.rep("\0", 100), string.rep(",", 100), string.rep(" ", 100), "Thu, 18 Nov 2010",
  "Thu Nov 18 11:27:35", "Thu, 29 Feb 0000 00:00:00 GMT", "Thu, 00 Jan 0000 00:00:00 GMT",
  "Thu, 99-Xyz-99 99:99:99", trap, print, coroutine.create(print), json.null, ngx.null}
local fns = {ngx.quote_sql_str, ngx.crc32_short, ngx.hmac_sha1, ngx.parse_http_time,
  ngx.cookie_time, ngx.localtime, ngx.utctime, ngx.update_time, ngx.worker.count,
  ngx.worker.exiting, ngx.config.prefix, ngx.config.nginx_configure}
local n = #vals + 1
local function check(ok, err)
  assert(ok or type(err) == "string", "an error that is not a string")
end
for _, f in ipairs(fns) do
  for i = 1, n do check(pcall(f, vals[i])) end
end
for i = 1, n do  -- the one function of two arguments: each value in each place
  check(pcall(ngx.hmac_sha1, vals[i], "k"))
  check(pcall(ngx.hmac_sha1, "k", vals[i]))
end
assert(not ran, "a metamethod of an argument ran")
-- the facts stay as they were
assert(ngx.config.subsystem == "http" and ngx.null == json.null)
