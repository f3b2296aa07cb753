pub mod config;
pub mod generate;
