//! Sharding: with `--shard.count N --shard.index I`, a replica polls only the targets whose
//! stable hash of the name is I modulo N, so N replicas over one config poll every target
//! exactly once between them, and a target keeps its replica across restarts and reloads.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("--shard.count must be at least 1")]
    ZeroCount,
    #[error("--shard.index {0:?} is neither a number nor a name ending in -<number> (a StatefulSet pod name)")]
    BadIndex(String),
    #[error("--shard.index {index} is not below --shard.count {count}")]
    OutOfRange { index: u32, count: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `index` is a number, or a name ending in `-<number>` such as the pod name
    /// `whatsapp-exporter-2` of a StatefulSet, whose ordinal is the shard.
    pub fn parse(index: &str, count: u32) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::ZeroCount);
        }
        let digits = index.rsplit('-').next().unwrap_or(index);
        let index_number: u32 = digits
            .parse()
            .map_err(|_| ShardError::BadIndex(index.to_owned()))?;
        if index_number >= count {
            return Err(ShardError::OutOfRange {
                index: index_number,
                count,
            });
        }
        Ok(Shard {
            index: index_number,
            count,
        })
    }

    /// Whether this replica polls the target `name`.
    pub fn owns(&self, name: &str) -> bool {
        stable_hash(name) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.count)
    }
}

/// A stable 64-bit FNV-1a hash: the same name gives the same value across restarts,
/// machines and Rust versions (std's hashers promise none of that).
pub fn stable_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_name_has_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut per_shard = [0; 3];
        for i in 0..3000 {
            let name = format!("number-{i}");
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(&name)).collect();
            assert_eq!(owners.len(), 1, "{name}");
            per_shard[owners[0].index as usize] += 1;
        }
        assert!(
            per_shard.iter().all(|&n| (900..=1100).contains(&n)),
            "{per_shard:?}"
        );
        assert!(Shard::default().owns("anything"));
    }

    #[test]
    fn index_from_a_number_or_a_pod_name() {
        assert_eq!(Shard::parse("2", 3), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(
            Shard::parse("whatsapp-exporter-1", 3),
            Ok(Shard { index: 1, count: 3 })
        );
        assert_eq!(
            Shard::parse("whatsapp-exporter-3", 3),
            Err(ShardError::OutOfRange { index: 3, count: 3 })
        );
        assert_eq!(
            Shard::parse("exporter", 3),
            Err(ShardError::BadIndex("exporter".into()))
        );
        assert_eq!(Shard::parse("0", 0), Err(ShardError::ZeroCount));
    }
}
