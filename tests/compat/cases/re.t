=== ngx.re.match: the whole match and the groups
--- mirrors: t/034-match.t
--- content
local m = ngx.re.match("hello 1234", "([0-9])[0-9]+")
ngx.say(m[0], " ", m[1])
--- response_body
1234 1
=== ngx.re.match: named groups
--- mirrors: t/034-match.t
--- content
local m = ngx.re.match("x=12", "(?<k>\\w)=(?<v>\\d+)")
ngx.say(m.k, " ", m.v, " ", m[1], " ", m[2])
--- response_body
x 12 x 12
=== ngx.re.match: no match is nil
--- mirrors: t/034-match.t
--- content
ngx.say(tostring(ngx.re.match("hello", "[0-9]+")))
--- response_body
nil
=== ngx.re.find: the positions
--- mirrors: t/119-re-find.t
--- content
local from, to = ngx.re.find("hello, 1234", "([0-9]+)", "jo")
ngx.say(from, " ", to)
--- response_body
8 11
=== ngx.re.gsub with a template
--- mirrors: t/036-sub.t, t/037-gsub.t
--- content
local s, n = ngx.re.gsub("hello world", "o", "[$0]")
ngx.say(s, " ", n)
--- response_body
hell[o] w[o]rld 2
=== ngx.re.sub with a function
--- mirrors: t/036-sub.t
--- content
local s, n = ngx.re.sub("a1b2", "[0-9]", function(m) return "<" .. m[0] .. ">" end)
ngx.say(s, " ", n)
--- response_body
a<1>b2 1
=== ngx.re.gmatch iterates over the matches
--- mirrors: t/035-gmatch.t
--- content
local out = {}
for m in ngx.re.gmatch("a1b22c333", "[0-9]+") do out[#out + 1] = m[0] end
ngx.say(table.concat(out, ","))
--- response_body
1,22,333
