-- A delivery failed: the item is tried again at ARGV[3], or, once it has failed for the
-- whole retry window, becomes a dead letter (kept, to be replayed) and the next of its
-- callback may go.
-- KEYS: items, due, order, dead. ARGV: id, now, next try, window (ms), error.
-- Replies: 'retry' | 'dead' | 'gone'.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'gone' end
local item = cjson.decode(raw)
item.attempts = item.attempts + 1
item.first_failed = item.first_failed or tonumber(ARGV[2])
item.error = ARGV[5]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(item))
if tonumber(ARGV[2]) - item.first_failed >= tonumber(ARGV[4]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], order_member(item.event.entry, ARGV[1]))
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  return 'dead'
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 'retry'
