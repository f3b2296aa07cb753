-- Adds one key's delta to ad_stats_minute. The caller sums, per
-- (minute, ad_id, ad_category), the impressions the batch really inserted
-- (at their event minute) and the matched clicks it really inserted (at
-- their impression's minute), then runs this once per key.
--
-- Parameters:
--   ?1 minute_ms               INTEGER  a multiple of 60000
--   ?2 ad_id                   TEXT
--   ?3 ad_category             TEXT
--   ?4 impressions             INTEGER
--   ?5 clicks                  INTEGER
--   ?6 impression_cost_micros  INTEGER
--   ?7 click_cost_micros       INTEGER
INSERT INTO ad_stats_minute (minute_ms, ad_id, ad_category, impressions, clicks,
                             impression_cost_micros, click_cost_micros)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (minute_ms, ad_id, ad_category) DO UPDATE
    SET impressions            = impressions + excluded.impressions,
        clicks                 = clicks + excluded.clicks,
        impression_cost_micros = impression_cost_micros + excluded.impression_cost_micros,
        click_cost_micros      = click_cost_micros + excluded.click_cost_micros;
