-- Releases the bookings that still name this entry.
-- KEYS: agent hashes. ARGV: entry.
-- Replies: 'ok'.
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'booked') == ARGV[1] then
    redis.call('HSET', key, 'booked', '', 'booked_queue', '', 'booked_until', '0')
  end
end
return 'ok'
