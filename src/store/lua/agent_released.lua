-- An agent a callback no longer needs: their booking for it ends, and an agent it put on
-- the call (and still on it) is available again.
-- KEYS: agent, agent events. ARGV: entry, now, queue.
-- Replies: 'ok' | 'unknown' (no such agent).
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return 'unknown' end
release_booking(KEYS[1], ARGV[1])
if on_call_of(KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'available', 'idle_since', ARGV[2], 'state_since',
    ARGV[2])
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', id, 'from', 'on_call',
    'to', 'available', 'source', 'callback', 'queue', ARGV[3], 'at', ARGV[2])
end
return 'ok'
