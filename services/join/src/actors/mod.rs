pub mod join_shard;
