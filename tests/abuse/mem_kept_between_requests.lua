-- expect: quota:memory
-- requests: 8
-- a plugin keeps 1 MB more per request (distinct strings: equal ones are interned once);
-- its state must trip on memory and be rebuilt
kept = kept or {}
kept[#kept + 1] = string.rep("x", 1024 * 1024) .. #kept
