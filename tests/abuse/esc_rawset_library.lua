-- expect: ok
-- rawset on a library proxy only touches the proxy: the real table is unchanged
rawset(string, "upper", function() return "pwned" end)
assert(("a"):upper() == "A")
