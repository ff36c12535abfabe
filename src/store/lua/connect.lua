-- The agent answered: the entry is connected and leaves the queue. Repeating it for the
-- same agent changes nothing and answers 'ok', so a caller may retry after a lost reply.
-- KEYS: entry, waiting (unused: the layout `close` shares), open, timers, events,
-- withdrawals, callback stats (unused).
-- ARGV: id, agent, now, offer timer, max-wait timer, retention (s).
-- Replies: {'ok', other agents of a ring-all offer…} | {'not_live'} (a callback connects
-- through its own script) | {'not_offered'} | {'not_offered_to'}.
local e = redis.call('HMGET', KEYS[1], 'status', 'offered_to', 'queue', 'line', 'position',
  'offered_at', 'connected_agent', 'kind')
-- A callback connects when its customer answers, through its own script.
if e[8] == 'callback' then return {'not_live'} end
if e[1] == 'connected' then
  if e[7] == ARGV[2] then return {'ok'} end
  return {'not_offered_to'}
end
if e[1] ~= 'offered' then return {'not_offered'} end
local others, found = {}, false
for _, a in ipairs(split(e[2])) do
  if a == ARGV[2] then found = true else others[#others + 1] = a end
end
if not found then return {'not_offered_to'} end
redis.call('HSET', KEYS[1], 'status', 'connected', 'offered_to', '',
  'connected_agent', ARGV[2], 'connected_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('XADD', KEYS[5], '*', 'event', 'connected', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agent', ARGV[2], 'at', ARGV[3],
  'waited_ms', ms(tonumber(ARGV[3]) - tonumber(e[5])),
  'rang_ms', ms(tonumber(ARGV[3]) - tonumber(e[6])))
withdrawn(KEYS[6], ARGV[1], table.concat(others, ','), 'connected')
local out = {'ok'}
for _, a in ipairs(others) do out[#out + 1] = a end
return out
