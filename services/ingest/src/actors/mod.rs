pub mod topic_ingestor;
