-- expect: quota:instructions quota:time
::again::
goto again
