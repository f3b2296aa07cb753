pub mod config;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod join;
pub mod sink;
pub mod top;
pub mod verify;
