-- expect: error
-- msg: io
io.open("/etc/passwd")
