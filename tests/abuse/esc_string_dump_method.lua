-- expect: error
-- msg: method 'dump'
("x"):dump()
