-- The conversation of a connected callback ended.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent.
-- Replies: 'ok' | refusal: 'unknown', 'not_callback', 'not_connected'.
if e.status == '' then return 'unknown' end
if e.kind ~= 'callback' then return 'not_callback' end
if e.status ~= 'connected' or e.connected_agent ~= ARGV[4] then return 'not_connected' end
event('completed', 'agent', ARGV[4], 'talk_ms', ms(tonumber(now) - tonumber(e.connected_at)))
return 'ok'
