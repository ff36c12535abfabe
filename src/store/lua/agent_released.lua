-- An agent a callback no longer needs: their booking for it ends, and an agent it put on
-- the call is available again.
-- KEYS: agent, agent events. ARGV: entry, now, queue.
-- Replies: 'ok' | 'unknown' (no such agent).
local a = redis.call('HMGET', KEYS[1], 'id', 'state')
if not a[1] then return 'unknown' end
release_booking(KEYS[1], ARGV[1])
if a[2] == 'on_call' then
  redis.call('HSET', KEYS[1], 'state', 'available', 'idle_since', ARGV[2])
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', 'on_call',
    'to', 'available', 'source', 'callback', 'queue', ARGV[3], 'at', ARGV[2])
end
return 'ok'
