-- The agent answered the offer of a callback and now hears whom they would call: the
-- offer's timeout moves to the end of that decision, so it neither returns the callback to
-- the queue meanwhile nor is lost if this daemon dies.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent, new timeout.
-- Replies: 'ok' | refusal: 'unknown', 'not_callback', 'not_offered', 'not_offered_to'.
if e.status == '' then return 'unknown' end
if e.kind ~= 'callback' then return 'not_callback' end
if e.status ~= 'offered' then return 'not_offered' end
local found = false
for _, a in ipairs(split(e.offered_to)) do if a == ARGV[4] then found = true end end
if not found then return 'not_offered_to' end
redis.call('ZADD', KEYS[4], ARGV[5], TIMER.offer_timeout .. id)
return 'ok'
