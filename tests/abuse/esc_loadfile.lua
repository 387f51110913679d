-- expect: error
-- msg: loadfile
loadfile("/etc/passwd")
