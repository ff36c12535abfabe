-- Reads the first entries of one of a queue's sorted sets of entry ids (waiting, open),
-- in order, in one round trip; with a second set, only the ids not in it (open and not
-- waiting: the few offered or dialing, however long the queue). The entry keys are built
-- from a prefix that carries the queue's hash tag, so they share its slot.
-- KEYS: the set[, the set of ids left out]. ARGV: entry key prefix, index of the last
-- entry (-1: all).
-- Replies: one HGETALL reply per entry.
local ids
if KEYS[2] then
  ids = redis.call('ZDIFF', 2, KEYS[1], KEYS[2])
else
  ids = redis.call('ZRANGE', KEYS[1], 0, ARGV[2])
end
local last = tonumber(ARGV[2])
local out = {}
for i, id in ipairs(ids) do
  if last >= 0 and i > last + 1 then break end
  out[i] = redis.call('HGETALL', ARGV[1] .. id)
end
return out
