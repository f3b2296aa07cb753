-- Adds one key's delta to click_outcomes_minute: every click outcome the batch
-- really inserted, at its accounting minute (the impression's minute for a
-- match, the click's own minute otherwise).
--
-- Parameters:
--   ?1 minute_ms          INTEGER  a multiple of 60000
--   ?2 outcome            TEXT
--   ?3 clicks             INTEGER
--   ?4 click_cost_micros  INTEGER
INSERT INTO click_outcomes_minute (minute_ms, outcome, clicks, click_cost_micros)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (minute_ms, outcome) DO UPDATE
    SET clicks            = clicks + excluded.clicks,
        click_cost_micros = click_cost_micros + excluded.click_cost_micros;
