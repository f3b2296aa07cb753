-- Inserts one click outcome; run once per outcome record of the batch, in
-- Kafka order, inside the batch's transaction. Rows affected: 1 = inserted
-- (add to the rollup deltas), 0 = the click already has an outcome, which
-- stays (count a duplicate at the row's accounting minute).
--
-- Parameters (?7..?13 NULL unless outcome = 'matched'):
--   ?1  click_id            TEXT
--   ?2  impression_id       TEXT
--   ?3  click_position      INTEGER
--   ?4  click_cost_micros   INTEGER  cost * 1e6 rounded
--   ?5  event_time_ms       INTEGER  the click's time, epoch milliseconds, UTC
--   ?6  outcome             TEXT     'matched' | 'no_impression' | 'late'
--   ?7  impression_time_ms  INTEGER  the matched impression's event time
--   ?8  ad_id               TEXT
--   ?9  ad_category         TEXT
--   ?10 device              TEXT
--   ?11 os                  TEXT
--   ?12 browser             TEXT
--   ?13 location            TEXT
INSERT INTO clicks (click_id, impression_id, click_position, click_cost_micros,
                    event_time_ms, outcome, impression_time_ms, ad_id, ad_category,
                    device, os, browser, location)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
ON CONFLICT (click_id) DO NOTHING;
