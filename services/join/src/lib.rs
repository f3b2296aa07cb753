//! The join service: one `JoinShard` actor per keyed partition pair, holding
//! impression state and giving every distinct click exactly one outcome on
//! `click-outcomes`, with offsets committed so a restarted shard replays to the same
//! state. The rules live in the pure [`shard_state`] and [`watermark`] modules.

pub mod compact;
pub mod shard_state;
pub mod watermark;
