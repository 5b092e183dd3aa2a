//! flagd's custom targeting operators, as pure functions over arguments
//! that JsonLogic has already evaluated.
//!
//! flagd (OpenFeature's flag daemon) extends JsonLogic with four operators,
//! and every flagd SDK implements them the same way so that a user lands in
//! the same bucket whichever SDK evaluates the flag:
//!
//! | operator      | here              | result                                  |
//! |---------------|-------------------|-----------------------------------------|
//! | `fractional`  | [`fractional`]    | the variant picked for this user        |
//! | `sem_ver`     | [`sem_ver`]       | a semantic-version comparison           |
//! | `starts_with` | [`starts_with`]   | a case-sensitive prefix test            |
//! | `ends_with`   | [`ends_with`]     | a case-sensitive suffix test            |
//!
//! Each function takes the operator's argument list *after* evaluation (the
//! way a JsonLogic engine hands arguments to a custom operator: `{"var":
//! "email"}` has already become `"ada@example.com"`), and returns `None`
//! where flagd's operator returns `null`: on malformed arguments. A null
//! from targeting makes the flag fall back to its default variant, so a
//! broken rule never picks a variant by accident. None of them panics,
//! whatever the input.
//!
//! # Which flagd semantics
//!
//! `fractional` follows flagd's **current** bucketing, the one introduced by
//! flagd PR #1909 and tagged `@fractional-v2` in flagd's test bed:
//! MurmurHash3 x86-32 (seed 0) of the bucketing key, read as an unsigned
//! 32-bit number `h`, mapped to a bucket `(h × total weight) >> 32` among
//! integer weights that sum to at most 2³¹ − 1. The older percentage
//! algorithm (`@fractional-v1`: `|h as i32| / i32::MAX × 100`) picks other
//! variants for the same users and is not implemented. A later flagd
//! version (`@fractional-v3`, not released) plans to hash a CBOR encoding of
//! the key instead, which will move users again; the bytes to hash are built
//! by a single private function, so that change will touch one place.
//!
//! `sem_ver`, `starts_with` and `ends_with` follow flagd's operator
//! specifications as of the same release: invalid input gives `null`
//! (`None`), not `false`.
//!
//! # Examples
//!
//! ```
//! use acqrel_flags::ops;
//! use serde_json::json;
//!
//! // {"fractional": [["on", 10], ["off", 90]]} for user "ada" on flag "new-ui":
//! let variant = ops::fractional("new-ui", Some("ada"), &[json!(["on", 10]), json!(["off", 90])]);
//! assert!(variant == Some(json!("on")) || variant == Some(json!("off")));
//!
//! // {"sem_ver": [{"var": "version"}, ">=", "1.2"]} with version "1.10.0":
//! assert_eq!(ops::sem_ver(&[json!("1.10.0"), json!(">="), json!("1.2")]), Some(true));
//!
//! // {"ends_with": [{"var": "email"}, "@example.com"]}:
//! assert_eq!(ops::ends_with(&[json!("ada@example.com"), json!("@example.com")]), Some(true));
//! ```

mod fractional;
mod murmur3;
mod sem_ver;
mod strings;

pub use self::fractional::fractional;
pub use self::murmur3::murmur3_x86_32;
pub use self::sem_ver::sem_ver;
pub use self::strings::{ends_with, starts_with};
