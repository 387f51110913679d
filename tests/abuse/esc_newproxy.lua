-- expect: error
-- msg: newproxy
newproxy(true)
