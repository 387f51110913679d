-- expect: error
-- msg: dump
string.dump(function() end)
