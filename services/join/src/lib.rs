//! The join service: one `JoinShard` actor per keyed partition pair, holding
//! impression state and giving every distinct click exactly one outcome on
//! `click-outcomes`, with offsets committed so a restarted shard replays to the same
//! state. Built by issue 5.
