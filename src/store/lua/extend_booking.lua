-- Extends an agent's booking for an entry while it still names that entry.
-- KEYS: agent. ARGV: entry, booked-until.
-- Replies: 'ok' | 'not_booked'.
if extend_booking(KEYS[1], ARGV[1], ARGV[2]) then return 'ok' end
return 'not_booked'
