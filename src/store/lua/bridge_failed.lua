-- The bridge to the agent who answered could not be made (their leg vanished): the entry
-- waits again at its old position.
-- KEYS: entry, waiting, open, events. ARGV: id, agent, now.
-- Replies: 'ok' | 'not_connected' (not connected to this agent).
local e = redis.call('HMGET', KEYS[1], 'status', 'connected_agent', 'queue', 'line', 'position')
if e[1] ~= 'connected' or e[2] ~= ARGV[2] then return 'not_connected' end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'connected_agent', '', 'connected_at', '')
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], e[5], ARGV[1])
redis.call('ZADD', KEYS[3], e[5], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'event', 'agent_no_answer', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agent', ARGV[2], 'cause', 'bridge_failed', 'at', ARGV[3])
return 'ok'
