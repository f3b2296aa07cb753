//! The traffic generator: realistic impressions and clicks with configurable
//! disorder, and the truth file a correct pipeline must reproduce. Built by issue 3.
