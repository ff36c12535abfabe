-- Changes an agent's state when the state Redis holds now is one of those allowed
-- (event `agent_state`); setting the current state again changes nothing. A timer given
-- (the end of a wrap-up) is scheduled in the same step as the change. A call's entry given
-- (its end is the change) refuses the change when the agent is on another call by now.
-- KEYS: agent, agent events, agent timers, their leases.
-- ARGV: to, now, source, timer ('' for none), its due time, the ended call's entry ('' for
-- none), states allowed to move to `to`…
-- Replies: {'ok' | 'same' | 'refused', previous state} | {'unknown', ''}.
local a = redis.call('HMGET', KEYS[1], 'id', 'state')
if not a[1] then return {'unknown', ''} end
if a[2] == ARGV[1] then return {'same', a[2]} end
if ARGV[6] ~= '' and not on_call_of(KEYS[1], ARGV[6]) then return {'refused', a[2]} end
local allowed = false
for i = 7, #ARGV do if ARGV[i] == a[2] then allowed = true end end
if not allowed then return {'refused', a[2]} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'state_since', ARGV[2])
if ARGV[1] == 'available' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[2]) end
redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', a[2],
  'to', ARGV[1], 'source', ARGV[3], 'at', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
  redis.call('HDEL', KEYS[4], ARGV[4])
end
return {'ok', a[2]}
