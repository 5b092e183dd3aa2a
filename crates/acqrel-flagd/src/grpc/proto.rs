//! flagd's protocols, compiled from the vendored schemas in `proto/`
//! (flagd's `buf.build/open-feature/flagd`, Apache-2.0) by `build.rs`.
//!
//! Both sides are generated: the servers acqrel-flagd runs, and clients
//! generic over their transport (give them a `tonic::transport::Channel`,
//! or any `GrpcService`), which is what the crate's own tests call.
//!
//! # Examples
//!
//! ```
//! use acqrel_flagd::proto::evaluation::v1::ResolveBooleanRequest;
//!
//! let request = ResolveBooleanRequest { flag_key: "new-checkout".into(), context: None };
//! assert_eq!(request.flag_key, "new-checkout");
//! ```

/// `flagd.evaluation`: single and bulk evaluation, and the change stream
/// of the RPC providers.
pub mod evaluation {
    /// Version 1.
    #[allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        clippy::all
    )]
    pub mod v1 {
        tonic::include_proto!("flagd.evaluation.v1");
    }

    /// Version 2, which newer providers call: the same resolvers without
    /// `ResolveAll`, with `value` and `variant` optional, so an answer
    /// that leaves the value to the caller (a disabled flag, no default
    /// variant) has none rather than the type's zero.
    #[allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        clippy::all
    )]
    pub mod v2 {
        tonic::include_proto!("flagd.evaluation.v2");
    }
}

/// `flagd.sync.v1`: the whole flag configuration, streamed to the
/// in-process providers (and to other flagd instances).
pub mod sync {
    /// Version 1.
    #[allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        clippy::all
    )]
    pub mod v1 {
        tonic::include_proto!("flagd.sync.v1");
    }
}
