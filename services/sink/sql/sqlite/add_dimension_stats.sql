-- Adds one key's delta to dimension_stats_minute. Every inserted impression
-- and every inserted matched click adds to five keys, one per dimension:
-- ('ad_category', ad_category), ('device', device), ('os', os),
-- ('browser', browser), ('location', location), at the impression's minute.
--
-- Parameters:
--   ?1 dimension               TEXT     one of the five above
--   ?2 minute_ms               INTEGER  a multiple of 60000
--   ?3 value                   TEXT
--   ?4 impressions             INTEGER
--   ?5 clicks                  INTEGER
--   ?6 impression_cost_micros  INTEGER
--   ?7 click_cost_micros       INTEGER
INSERT INTO dimension_stats_minute (dimension, minute_ms, value, impressions, clicks,
                                    impression_cost_micros, click_cost_micros)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (dimension, minute_ms, value) DO UPDATE
    SET impressions            = impressions + excluded.impressions,
        clicks                 = clicks + excluded.clicks,
        impression_cost_micros = impression_cost_micros + excluded.impression_cost_micros,
        click_cost_micros      = click_cost_micros + excluded.click_cost_micros;
