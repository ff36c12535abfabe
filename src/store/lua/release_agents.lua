-- Releases the bookings that still name this entry.
-- KEYS: agent hashes. ARGV: entry.
-- Replies: 'ok'.
for _, key in ipairs(KEYS) do release_booking(key, ARGV[1]) end
return 'ok'
