-- The agent who answered is on the call (and their run of misses is over). Other agents
-- of a ring-all offer keep their booking until their legs are gone. The answer is a fact, so this does not
-- check the state: an agent set `away` while their phone rang is on the call all the same.
-- The call's entry, queue and start are recorded: only the end of that call frees them,
-- and a resync that finds no leg of it on the switch knows which call to end.
-- KEYS: agent, agent events. ARGV: entry, now, queue.
-- Replies: 'ok' | 'unknown' (no such agent).
local a = redis.call('HMGET', KEYS[1], 'id', 'state')
if not a[1] then return 'unknown' end
redis.call('HSET', KEYS[1], 'state', 'on_call', 'missed', '0', 'call_entry', ARGV[1],
  'call_queue', ARGV[3], 'call_since', ARGV[2])
if a[2] ~= 'on_call' then redis.call('HSET', KEYS[1], 'state_since', ARGV[2]) end
release_booking(KEYS[1], ARGV[1])
if a[2] ~= 'on_call' then
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', a[2],
    'to', 'on_call', 'source', 'answered', 'queue', ARGV[3], 'at', ARGV[2])
end
return 'ok'
