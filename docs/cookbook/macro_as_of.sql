-- Point in time: a series as it was known on a date (e.g. GDP on 2024-11-15), its newest
-- observations first: the vintage in force that day, not today's revised values.
SELECT obs_date, value, realtime_start
FROM macro_as_of(:'series_id', :'as_of')
WHERE value IS NOT NULL
ORDER BY obs_date DESC
LIMIT 4;
