-- expect: error
-- msg: only the plugin's own code can sleep
-- a sleep inside a coroutine the plugin made would yield to the plugin's own resume
coroutine.wrap(function() ngx.sleep(0) end)()
