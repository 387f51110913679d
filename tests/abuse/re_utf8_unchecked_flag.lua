-- expect: ok
-- the U flag on invalid UTF-8 (truncated sequences at the very end): an error or no match,
-- never a read past the subject
for _, subj in ipairs({"\240", "a\226\130", "\195", "abc\244\143\191", "\237\160\128", "\192\128"}) do
  for _, pat in ipairs({".", ".$", "\\X", "(?<=.)", "[^a]+"}) do
    for _, opt in ipairs({"U", "u", "jU", "Ui"}) do
      local m, err = ngx.re.match(subj, pat, opt)
      assert(m == nil, "matched " .. pat)
      local from, to, ferr = ngx.re.find(subj, pat, opt)
      assert(from == nil)
      local r, n, gerr = ngx.re.gsub(subj, pat, "x", opt)
      assert(r == nil and gerr, "gsub")
      local it = ngx.re.gmatch(subj, pat, opt)
      local v, ierr = it()
      assert(v == nil)
    end
  end
end
local m = ngx.re.match("h\195\169llo", "^h.llo$", "U")
assert(m and m[0] == "h\195\169llo")
