//! The sink service: batches impressions and click outcomes into PostgreSQL (or
//! SQLite) with rollups, storing its input offsets in the same transaction so
//! results are effectively once. Built by issue 6.
