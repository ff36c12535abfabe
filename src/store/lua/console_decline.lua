-- An agent declined, in their console, a callback waiting there: it leaves their list
-- (they are recorded in `declined`) and stays in the others'; once every eligible agent
-- declined it, it is closed (`declined_by_all`).
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent, eligible agents…
-- Replies: {'waiting'} | {'declined_by_all'} | {refusal}: 'unknown', 'not_callback',
-- 'not_console', 'not_waiting'.
if e.status == '' then return {'unknown'} end
if e.kind ~= 'callback' then return {'not_callback'} end
if e.console ~= '1' then return {'not_console'} end
if e.status ~= 'waiting' then return {'not_waiting'} end
local agent = ARGV[4]
if declined_by(agent, 5, 'via', 'console') then
  close('declined_by_all', 'agent', agent)
  return {'declined_by_all'}
end
return {'waiting'}
