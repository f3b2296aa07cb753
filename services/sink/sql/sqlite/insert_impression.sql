-- Inserts one impression; run once per impression of the batch, in Kafka
-- order, inside the batch's transaction (SQLite has no array parameters; a
-- prepared statement per row is fast there, there is no network round trip).
-- Rows affected: 1 = inserted, so the caller adds it to its rollup deltas;
-- 0 = the id was already there (earlier batch or earlier in this batch), so
-- the caller counts a duplicate at the row's minute. The first one wins.
--
-- Parameters:
--   ?1  impression_id          TEXT
--   ?2  user_id                TEXT
--   ?3  session_id             TEXT
--   ?4  ad_id                  TEXT
--   ?5  ad_category            TEXT
--   ?6  device                 TEXT
--   ?7  os                     TEXT
--   ?8  browser                TEXT
--   ?9  location               TEXT
--   ?10 page_id                TEXT
--   ?11 referrer               TEXT
--   ?12 impression_cost_micros INTEGER  cost * 1e6 rounded
--   ?13 event_time_ms          INTEGER  epoch milliseconds, UTC
INSERT INTO impressions (impression_id, user_id, session_id, ad_id, ad_category, device,
                         os, browser, location, page_id, referrer,
                         impression_cost_micros, event_time_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
ON CONFLICT (impression_id) DO NOTHING;
