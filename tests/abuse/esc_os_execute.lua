-- expect: error
-- msg: execute
os.execute("id")
