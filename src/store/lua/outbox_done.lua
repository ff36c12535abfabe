-- An outbox item was delivered: it leaves the outbox, and the next of its callback may go.
-- KEYS: items, due, order. ARGV: id.
-- Replies: 'ok' | 'gone' (delivered or given up already).
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'gone' end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], order_member(cjson.decode(raw).event.entry, ARGV[1]))
return 'ok'
