-- Moves a webhook's cursor over the queue's event stream, putting the events it wants in
-- its outbox: the stream is written by the same scripts as the transitions, so an event is
-- in the outbox as soon as it happened, and moving the cursor and filling the outbox in
-- one step loses none and takes none twice, whichever daemon runs it. A webhook without a
-- cursor yet starts at the stream's end: it is sent what happens from now on.
-- KEYS: events stream, cursor, items, due, order.
-- ARGV: now, max events read, wanted kinds…
-- Replies: the number of events put in the outbox.
local cursor = redis.call('GET', KEYS[2])
if not cursor then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  redis.call('SET', KEYS[2], last[1] and last[1][1] or '0-0')
  return 0
end
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local read = redis.call('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', ARGV[2])
local taken = 0
for _, e in ipairs(read) do
  local id, f = e[1], {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if wanted[f.event] and f.entry then
    redis.call('HSET', KEYS[3], id, cjson.encode({event = f, attempts = 0}))
    redis.call('ZADD', KEYS[4], ARGV[1], id)
    redis.call('ZADD', KEYS[5], 0, order_member(f.entry, id))
    taken = taken + 1
  end
  cursor = id
end
redis.call('SET', KEYS[2], cursor)
return taken
