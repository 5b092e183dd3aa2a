//! [`RedisKey`]: how a key of a keyed limiter becomes the bytes of its
//! Redis key.

use std::io::Write;

/// A key of a [`KeyedRedisRateLimiter`](crate::KeyedRedisRateLimiter): the
/// bytes appended to the limiter's prefix to name its bucket in Redis.
///
/// Strings and byte strings are their bytes (any bytes: UTF-8 or not, the
/// empty key included); integers their decimal digits, so a
/// `KeyedRateLimiter<u64>` can become a `KeyedRedisRateLimiter<u64>`.
/// Two keys that write the same bytes share a bucket (`7u32` and `"7"`
/// under one prefix, say): give limiters of different key types different
/// prefixes.
///
/// # Examples
///
/// ```
/// use acqrel_ratelimit_redis::RedisKey;
///
/// struct Tenant { region: &'static str, id: u32 }
///
/// impl RedisKey for Tenant {
///     fn write_key(&self, out: &mut Vec<u8>) {
///         out.extend_from_slice(self.region.as_bytes());
///         out.push(b'/');
///         self.id.write_key(out);
///     }
/// }
///
/// let mut out = b"rl:".to_vec();
/// Tenant { region: "eu", id: 42 }.write_key(&mut out);
/// assert_eq!(out, b"rl:eu/42");
/// ```
pub trait RedisKey {
    /// Appends the key's bytes to `out`.
    fn write_key(&self, out: &mut Vec<u8>);
}

impl RedisKey for [u8] {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> RedisKey for [u8; N] {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl RedisKey for Vec<u8> {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl RedisKey for str {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RedisKey for String {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl<T: RedisKey + ?Sized> RedisKey for &T {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

/// Decimal digits, as `Display` writes them.
macro_rules! decimal_keys {
    ($($int:ty),*) => {$(
        impl RedisKey for $int {
            fn write_key(&self, out: &mut Vec<u8>) {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

decimal_keys!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(key: &(impl RedisKey + ?Sized)) -> Vec<u8> {
        let mut out = Vec::new();
        key.write_key(&mut out);
        out
    }

    #[test]
    fn keys_write_their_bytes_or_digits() {
        assert_eq!(bytes("ключ"), "ключ".as_bytes());
        assert_eq!(bytes(&b"\xff\x00"[..]), b"\xff\x00");
        assert_eq!(bytes(&[1u8, 2]), [1, 2]);
        assert_eq!(bytes(&String::new()), b"");
        assert_eq!(bytes(&u64::MAX), b"18446744073709551615");
        assert_eq!(bytes(&-7i32), b"-7");
        assert_eq!(bytes(&&42usize), b"42");
    }
}
