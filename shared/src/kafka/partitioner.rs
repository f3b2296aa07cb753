//! The Java client's default partitioner (murmur2 of the key), so that records adjoin
//! writes land where any other producer's would, and co-partitioned topics stay
//! co-partitioned whoever writes them. librdkafka calls it `murmur2_random`.

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as a signed
/// 32-bit value like the Java original.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut hash = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        hash = hash.wrapping_mul(M);
        hash ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        hash ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        hash ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        hash ^= u32::from(tail[0]);
        hash = hash.wrapping_mul(M);
    }
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(M);
    hash ^= hash >> 15;
    hash as i32
}

/// Returns the partition of `key` among `num_partitions`, as the Java client's
/// default partitioner computes it for keyed records.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    debug_assert!(num_partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % num_partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_java_clients_test_vectors() {
        // From UtilsTest.testMurmur2 in the Apache Kafka Java client.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for partitions in 1..=12 {
            for key in ["a", "imp-1", "21", ""] {
                let partition = partition_for_key(key.as_bytes(), partitions);
                assert!((0..partitions).contains(&partition));
                assert_eq!(partition, partition_for_key(key.as_bytes(), partitions));
            }
        }
        // "21" hashes negative: the sign bit is masked, not negated, as in Java.
        assert_eq!(
            partition_for_key(b"21", 7),
            (-973_932_308_i32 & 0x7fff_ffff) % 7
        );
    }
}
