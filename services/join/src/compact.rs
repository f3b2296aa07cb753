//! Compact forms of what a shard keeps per impression: ids as 16 bytes when they
//! are UUIDs (what producers send in practice), and low-cardinality attributes
//! (ad, category, device, OS, browser, location) as indexes into an interner.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashMap;

/// An id: a UUID's 16 bytes inline when the text is a canonical lower-case UUID
/// (so it prints back byte for byte), otherwise the text itself.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CompactId {
    Uuid([u8; 16]),
    Text(Box<str>),
}

impl CompactId {
    pub fn new(text: &str) -> Self {
        parse_uuid(text).map_or_else(|| CompactId::Text(text.into()), CompactId::Uuid)
    }

    /// Returns the heap bytes this id owns beyond its own size.
    pub fn heap_bytes(&self) -> usize {
        match self {
            CompactId::Uuid(_) => 0,
            CompactId::Text(text) => text.len(),
        }
    }
}

impl fmt::Display for CompactId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactId::Text(text) => formatter.write_str(text),
            CompactId::Uuid(bytes) => {
                for (index, byte) in bytes.iter().enumerate() {
                    if matches!(index, 4 | 6 | 8 | 10) {
                        formatter.write_str("-")?;
                    }
                    write!(formatter, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for CompactId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{self}")
    }
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower-case hex only: any other
/// spelling would not print back as it came, so it stays text. A byte pair at a
/// time through a lookup table: this runs for every record a shard reads.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    // Where each output byte's two hex digits start.
    const STARTS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let bytes = text.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|dash| bytes[*dash] != b'-') {
        return None;
    }
    let mut out = [0_u8; 16];
    let mut invalid = 0_u8;
    for (index, start) in STARTS.into_iter().enumerate() {
        let high = HEX[bytes[start] as usize];
        let low = HEX[bytes[start + 1] as usize];
        invalid |= (high | low) & 0x80;
        out[index] = (high << 4) | (low & 0x0f);
    }
    (invalid == 0).then_some(out)
}

/// Lower-case hex digit values; 0x80 marks anything else.
const HEX: [u8; 256] = {
    let mut table = [0x80_u8; 256];
    let mut digit = 0;
    while digit < 10 {
        table[b'0' as usize + digit] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[b'a' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    table
};

/// Hands out one small index per distinct string, shared by every impression in a
/// shard: a million impressions over a few thousand ads cost 4 bytes each, not a
/// string each.
#[derive(Debug, Default)]
pub struct Interner {
    indexes: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
    num_bytes: usize,
}

impl Interner {
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(index) = self.indexes.get(text) {
            return *index;
        }
        let index =
            u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct attribute values");
        let shared: Arc<str> = Arc::from(text);
        self.num_bytes += text.len();
        self.indexes.insert(Arc::clone(&shared), index);
        self.strings.push(shared);
        index
    }

    pub fn get(&self, index: u32) -> &str {
        &self.strings[index as usize]
    }

    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// Returns an estimate of the bytes the interner holds.
    pub fn heap_bytes(&self) -> usize {
        self.num_bytes
            + self.strings.capacity() * std::mem::size_of::<Arc<str>>()
            + self.indexes.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1)
            + self.strings.len() * 2 * std::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_inline_and_print_back() {
        let text = "0007c1c2-9b1e-4f7a-8a0b-3c2d1e0f9a8b";
        let id = CompactId::new(text);
        assert!(matches!(id, CompactId::Uuid(_)));
        assert_eq!(id.to_string(), text);
        assert_eq!(id.heap_bytes(), 0);
    }

    #[test]
    fn other_spellings_stay_text() {
        for text in [
            "0007C1C2-9B1E-4F7A-8A0B-3C2D1E0F9A8B",
            "0007c1c29b1e4f7a8a0b3c2d1e0f9a8b",
            "imp-7",
            "0007c1c2-9b1e-4f7a-8a0b-3c2d1e0f9a8g",
            "",
        ] {
            let id = CompactId::new(text);
            assert!(matches!(id, CompactId::Text(_)), "{text}");
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn interning_hands_out_one_index_per_string() {
        let mut interner = Interner::default();
        let mobile = interner.intern("mobile");
        let desktop = interner.intern("desktop");
        assert_ne!(mobile, desktop);
        assert_eq!(interner.intern("mobile"), mobile);
        assert_eq!(interner.get(desktop), "desktop");
        assert_eq!(interner.len(), 2);
    }
}
