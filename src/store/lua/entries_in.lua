-- Reads the first entries of one of a queue's sorted sets of entry ids (waiting, open),
-- in order, in one round trip. The entry keys are built from a prefix that carries the
-- queue's hash tag, so they share its slot.
-- KEYS: the set. ARGV: entry key prefix, index of the last entry (-1: all).
-- Replies: one HGETALL reply per entry.
local ids = redis.call('ZRANGE', KEYS[1], 0, ARGV[2])
local out = {}
for i, id in ipairs(ids) do out[i] = redis.call('HGETALL', ARGV[1] .. id) end
return out
