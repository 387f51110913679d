-- expect: quota:instructions quota:time
-- both the protected function and the handler loop: the error that ends the first (a trip
-- raised by the count hook) must not leave the handler running unmetered
xpcall(function() while true do end end, function() while true do end end)
