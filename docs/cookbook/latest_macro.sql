-- Each series' newest value, when it was published, what was first published for that date and
-- how many times it was revised since.
SELECT l.series_id, l.title, l.obs_date, l.value, l.realtime_start,
       first.value AS first_value, first.realtime_start AS first_published,
       v.vintages - 1 AS revisions
FROM latest_macro l
CROSS JOIN LATERAL (
    SELECT o.value, o.realtime_start FROM macro_observations o
    WHERE o.series_id = l.series_id AND o.obs_date = l.obs_date
    ORDER BY o.realtime_start LIMIT 1
) first
CROSS JOIN LATERAL (
    SELECT count(*) AS vintages FROM macro_observations o
    WHERE o.series_id = l.series_id AND o.obs_date = l.obs_date
) v
ORDER BY l.series_id;
