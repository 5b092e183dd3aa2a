//! MurmurHash3, x86 32-bit variant (Austin Appleby's `MurmurHash3_x86_32`),
//! the hash flagd buckets users with.
//!
//! Blocks are read as little-endian words whatever the target's byte order,
//! so a key hashes to the same value on s390x as on x86-64, and nothing here
//! depends on the pointer width.

/// First block-mixing multiplier.
const C1: u32 = 0xcc9e_2d51;
/// Second block-mixing multiplier.
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 x86-32 of `bytes` with `seed`.
///
/// This is the reference algorithm bit for bit (it reproduces the SMHasher
/// verification vectors), so a hash computed here equals the one every
/// flagd SDK computes for the same bytes; [`fractional`] uses it with seed
/// 0.
///
/// [`fractional`]: crate::ops::fractional
///
/// # Examples
///
/// ```
/// use acqrel_flags::ops::murmur3_x86_32;
///
/// assert_eq!(murmur3_x86_32(b"hello", 0), 0x248B_FA47);
/// assert_eq!(murmur3_x86_32(b"", 1), 0x514E_28B7);
/// ```
#[must_use]
pub fn murmur3_x86_32(bytes: &[u8], seed: u32) -> u32 {
    let (blocks, tail) = bytes.as_chunks::<4>();
    let mut h = seed;
    for block in blocks {
        h ^= mix_block(u32::from_le_bytes(*block));
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    if !tail.is_empty() {
        // The one to three trailing bytes, as the low bytes of a
        // little-endian word.
        let mut word = [0_u8; 4];
        word[..tail.len()].copy_from_slice(tail);
        h ^= mix_block(u32::from_le_bytes(word));
    }
    // The reference takes the length as a 32-bit `int`: inputs of 4 GiB or
    // more wrap, and this truncation reproduces that.
    h ^= bytes.len() as u32;
    finalize(h)
}

/// Scrambles one 32-bit block before it is folded into the state.
#[inline]
fn mix_block(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// The final avalanche (`fmix32`): every input bit affects every output
/// bit.
#[inline]
fn finalize(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tails of every length (0 to 3 bytes after the last block), which the
    /// published vectors do not all cover. Expected values from an
    /// independent Python transcription of the reference.
    #[test]
    fn every_tail_length() {
        assert_eq!(murmur3_x86_32(b"a", 0), 0x3C25_69B2);
        assert_eq!(murmur3_x86_32(b"ab", 0), 0x9BBF_D75F);
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xB3DD_93FA);
        assert_eq!(murmur3_x86_32(b"abcdefgh", 0), 0x49DD_CCC4);
        assert_eq!(murmur3_x86_32(b"hello!", 0), 0xC91D_B8C4);
    }
}
