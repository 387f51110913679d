-- expect: ok
leak = "from the attacker"
_G.leak2 = "again"
