-- Reads the first entries of one of a queue's sorted sets of entry ids (waiting, open),
-- in order, in one round trip; with a second set, only the ids not in it (open and not
-- waiting: the few offered or dialing, however long the queue). The entry keys are built
-- from a prefix that carries the queue's hash tag, so they share its slot.
-- Callbacks of console lines (`console` '1') wait in the same set, at their place, but
-- are taken from the agents' consoles: routing reads past them ('skip'), the consoles
-- read them alone ('only').
-- KEYS: the set[, the set of ids left out]. ARGV: entry key prefix, index of the last
-- entry (-1: all), '' | 'skip' | 'only'.
-- Replies: one HGETALL reply per entry.
local last = tonumber(ARGV[2])
local filter = ARGV[3] or ''
local out = {}
if filter == '' then
  local ids
  if KEYS[2] then
    ids = redis.call('ZDIFF', 2, KEYS[1], KEYS[2])
  else
    ids = redis.call('ZRANGE', KEYS[1], 0, ARGV[2])
  end
  for i, id in ipairs(ids) do
    if last >= 0 and i > last + 1 then break end
    out[i] = redis.call('HGETALL', ARGV[1] .. id)
  end
  return out
end
local want_console = filter == 'only'
local from, chunk = 0, 64
while true do
  local ids = redis.call('ZRANGE', KEYS[1], from, from + chunk - 1)
  for _, id in ipairs(ids) do
    local key = ARGV[1] .. id
    if (redis.call('HGET', key, 'console') == '1') == want_console then
      out[#out + 1] = redis.call('HGETALL', key)
      if last >= 0 and #out > last then return out end
    end
  end
  if #ids < chunk then return out end
  from = from + chunk
end
