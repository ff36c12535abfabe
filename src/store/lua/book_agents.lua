-- Books agents for an entry, all or none. With calls ending ('1'), agents still on the call
-- that ended (the entry of each agent's, from ARGV[7] on) are made available first
-- (whether or not the booking then succeeds: their call is over), so that a daemon frees
-- and books the agent of a call that just ended in one step.
-- KEYS: agent events, agent hashes. ARGV: entry, queue, now, booked-until, calls ending,
-- state source, the ended call's entry per agent.
-- Replies: 'ok' | 'busy:<agent>' (not free; nothing booked) | 'unknown' (an agent is not
-- registered).
local now = tonumber(ARGV[3])
for i = 2, #KEYS do
  local a = redis.call('HMGET', KEYS[i], 'id', 'state')
  if not a[1] then return 'unknown' end
  if ARGV[5] == '1' and on_call_of(KEYS[i], ARGV[5 + i]) then
    redis.call('HSET', KEYS[i], 'state', 'available', 'idle_since', ARGV[3], 'state_since',
      ARGV[3])
    redis.call('XADD', KEYS[1], '*', 'event', 'agent_state', 'agent', a[1], 'from', 'on_call',
      'to', 'available', 'source', ARGV[6], 'at', ARGV[3])
  end
  if not is_free(KEYS[i], now) then return 'busy:' .. a[1] end
end
for i = 2, #KEYS do book(KEYS[i], ARGV[1], ARGV[2], ARGV[4]) end
return 'ok'
