-- expect: error
-- msg: read-only
string.upper = function() return "pwned" end
