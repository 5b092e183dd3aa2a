//! flagd's gRPC services of the running binary, through real clients: the
//! Rust `open-feature-flagd` provider (0.3) in RPC mode against the
//! evaluation service and in in-process mode against the sync service, and
//! the generated tonic clients for what the provider does not call (the
//! event stream, version 2 of the evaluation service) and for the
//! server's own answers.
//!
//! The provider maps gRPC statuses to OpenFeature codes itself (its
//! `src/resolver/rpc.rs`): NOT_FOUND is `FLAG_NOT_FOUND`, INVALID_ARGUMENT
//! is `INVALID_CONTEXT`, and it passes the server's reason through as
//! `EvaluationReason::Other`.

mod common;

use acqrel_flagd::proto::evaluation::v1::service_client::ServiceClient;
use acqrel_flagd::proto::evaluation::v1::{
    EventStreamRequest, EventStreamResponse, ResolveBooleanRequest, ResolveStringRequest,
};
use acqrel_flagd::proto::evaluation::v2;
use acqrel_flagd::proto::sync::v1::SyncFlagsRequest;
use acqrel_flagd::proto::sync::v1::flag_sync_service_client::FlagSyncServiceClient;
use acqrel_flags::ops::murmur3_x86_32;
use common::{Daemon, PATIENCE, TempDir, channel, eventually_async, example_flags, testbed_flags};
use open_feature::{
    Client, EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature, StructValue,
    Value,
};
use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};
use prost_types::value::Kind;
use tonic::transport::Channel;

/// An SDK client whose provider is flagd at `port` with `resolver_type`,
/// uncached, bound under `name` (the tests share the SDK's global API).
async fn client(port: u16, resolver_type: ResolverType, name: &str) -> Client {
    let provider = FlagdProvider::new(FlagdOptions {
        host: "127.0.0.1".to_owned(),
        port,
        resolver_type,
        cache_settings: None,
        ..FlagdOptions::default()
    })
    .await
    .expect("a flagd provider");
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(name, provider).await;
    api.create_named_client(name)
}

/// The generated evaluation client on `daemon`'s evaluation port.
async fn evaluation(daemon: &Daemon) -> ServiceClient<Channel> {
    ServiceClient::new(channel(daemon.evaluation).await)
}

/// The next event-stream message, within [`PATIENCE`].
async fn next_event(stream: &mut tonic::Streaming<EventStreamResponse>) -> EventStreamResponse {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("an event within the patience")
        .expect("a healthy stream")
        .expect("an open stream")
}

fn reason(name: &str) -> Option<EvaluationReason> {
    Some(EvaluationReason::Other(name.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_provider_resolves_every_type() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let client = client(daemon.evaluation.port(), ResolverType::Rpc, "rpc-types").await;

    let flag = client
        .get_bool_details("dark-mode", None, None)
        .await
        .expect("dark-mode");
    assert_eq!(
        (flag.value, flag.variant.as_deref(), flag.reason),
        (true, Some("on"), reason("STATIC"))
    );

    let flag = client
        .get_string_details("support-channel", None, None)
        .await
        .expect("support-channel");
    assert_eq!(
        (flag.value.as_str(), flag.variant.as_deref(), flag.reason),
        ("email", Some("email"), reason("DEFAULT"))
    );
    // The context reaches the server: a targeted answer.
    let bigcorp = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("email", "bob@bigcorp.com");
    let flag = client
        .get_string_details("support-channel", Some(&bigcorp), None)
        .await
        .expect("support-channel for bigcorp");
    assert_eq!(
        (flag.value.as_str(), flag.variant.as_deref(), flag.reason),
        ("phone", Some("phone"), reason("TARGETING_MATCH"))
    );

    let flag = client
        .get_int_details("max-cart-items", None, None)
        .await
        .expect("max-cart-items");
    assert_eq!(
        (flag.value, flag.variant.as_deref()),
        (20, Some("standard"))
    );

    let flag = client
        .get_float_details("discount-rate", None, None)
        .await
        .expect("discount-rate");
    assert_eq!(
        (flag.value, flag.variant.as_deref(), flag.reason),
        (0.15, Some("spring"), reason("STATIC"))
    );

    let flag = client
        .get_struct_details::<StructValue>("checkout-layout", None, None)
        .await
        .expect("checkout-layout");
    assert_eq!(
        (flag.variant.as_deref(), flag.reason),
        (Some("classic"), reason("STATIC"))
    );
    let fields = &flag.value.fields;
    assert_eq!(fields.len(), 2);
    // A protobuf Struct carries every number as a double.
    assert_eq!(fields["steps"], Value::Float(3.0));
    assert_eq!(fields["expressPay"], Value::Bool(false));

    let error = client
        .get_bool_details("no-such-flag", None, None)
        .await
        .expect_err("an unknown flag");
    assert_eq!(error.code, EvaluationErrorCode::FlagNotFound);

    // The server answers a wrong type with INVALID_ARGUMENT (`TYPE_MISMATCH
    // ...`), which this provider reports as INVALID_CONTEXT: it keeps
    // TYPE_MISMATCH for FAILED_PRECONDITION.
    let error = client
        .get_int_details("dark-mode", None, None)
        .await
        .expect_err("a bool flag read as an int");
    assert_eq!(error.code, EvaluationErrorCode::InvalidContext);
    let status = evaluation(&daemon)
        .await
        .resolve_int(acqrel_flagd::proto::evaluation::v1::ResolveIntRequest {
            flag_key: "dark-mode".to_owned(),
            context: None,
        })
        .await
        .expect_err("a bool flag read as an int");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("TYPE_MISMATCH"), "{status:?}");
}

/// The example flags with `dark-mode`'s default variant set to `variant`.
fn dark_mode_defaulting_to(variant: &str) -> String {
    let mut flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example_flags()).expect("read the example"))
            .expect("the example is JSON");
    flags["flags"]["dark-mode"]["defaultVariant"] = variant.into();
    serde_json::to_string_pretty(&flags).expect("serialize the flags")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_provider_sees_a_file_edit() {
    let dir = TempDir::new("grpc-edit");
    let path = dir.write("flags.json", &dark_mode_defaulting_to("on"));
    let daemon = Daemon::ready(&[&path], &[]);
    let client = client(daemon.evaluation.port(), ResolverType::Rpc, "rpc-edit").await;
    assert!(
        client
            .get_bool_value("dark-mode", None, None)
            .await
            .expect("dark-mode")
    );

    dir.write("flags.json", &dark_mode_defaulting_to("off"));
    eventually_async("the provider to resolve the edited flag", || async {
        client.get_bool_value("dark-mode", None, None).await == Ok(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_says_ready_then_names_changed_keys() {
    let dir = TempDir::new("grpc-events");
    let path = dir.write("flags.json", &dark_mode_defaulting_to("on"));
    let daemon = Daemon::ready(&[&path], &[]);
    let mut stream = evaluation(&daemon)
        .await
        .event_stream(EventStreamRequest {})
        .await
        .expect("an event stream")
        .into_inner();
    assert_eq!(next_event(&mut stream).await.r#type, "provider_ready");

    dir.write("flags.json", &dark_mode_defaulting_to("off"));
    let change = loop {
        let event = next_event(&mut stream).await;
        if event.r#type != "keep_alive" {
            break event;
        }
    };
    assert_eq!(change.r#type, "configuration_change");
    let data = change.data.expect("the change names its flags");
    let Some(Kind::StructValue(flags)) = data.fields["flags"].kind.as_ref() else {
        panic!("`flags` is a struct: {data:?}");
    };
    let keys: Vec<&str> = flags.fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["dark-mode"]);
}

/// Version 2 answers as version 1 does, except where the caller's default
/// applies: there it sends no value and no variant, where version 1 sends
/// the type's zero and an empty variant. Its event stream is version 1's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_sends_no_value_where_the_callers_default_applies() {
    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let channel = channel(daemon.evaluation).await;
    let mut one = ServiceClient::new(channel.clone());
    let mut two = v2::service_client::ServiceClient::new(channel);
    let pick = |value: &str| prost_types::Struct {
        fields: [("pick".to_owned(), proto_string(value))].into(),
    };
    // (flag, context, v2 value, reason, v2 variant)
    let cases = [
        ("café", None, Some("espresso"), "STATIC", Some("espresso")),
        (
            "null-default-variant",
            Some(pick("b")),
            Some("b"),
            "TARGETING_MATCH",
            Some("b"),
        ),
        (
            "null-default-variant",
            Some(pick("a")),
            None,
            "DEFAULT",
            None,
        ),
    ];
    for (key, context, value, reason, variant) in cases {
        let request = v2::ResolveStringRequest {
            flag_key: key.to_owned(),
            context: context.clone(),
        };
        let answer = two.resolve_string(request).await.expect(key).into_inner();
        assert_eq!(answer.value.as_deref(), value, "{key} {context:?}");
        assert_eq!(answer.reason, reason, "{key} {context:?}");
        assert_eq!(answer.variant.as_deref(), variant, "{key} {context:?}");
        let request = ResolveStringRequest {
            flag_key: key.to_owned(),
            context: context.clone(),
        };
        let old = one.resolve_string(request).await.expect(key).into_inner();
        assert_eq!(old.value, value.unwrap_or_default(), "v1 {key}");
        assert_eq!(old.variant, variant.unwrap_or_default(), "v1 {key}");
        assert_eq!((old.reason, old.metadata), (answer.reason, answer.metadata));
    }
    let request = v2::ResolveBooleanRequest {
        flag_key: "disabled-flag".to_owned(),
        context: None,
    };
    let disabled = two
        .resolve_boolean(request)
        .await
        .expect("disabled")
        .into_inner();
    assert_eq!(
        (disabled.value, disabled.reason.as_str(), disabled.variant),
        (None, "DISABLED", None)
    );
    let request = v2::ResolveObjectRequest {
        flag_key: "café".to_owned(),
        context: None,
    };
    let status = two
        .resolve_object(request)
        .await
        .expect_err("not an object");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("TYPE_MISMATCH"), "{status:?}");
    let request = v2::ResolveIntRequest {
        flag_key: "no-such-flag".to_owned(),
        context: None,
    };
    let status = two.resolve_int(request).await.expect_err("unknown");
    assert_eq!(status.code(), tonic::Code::NotFound);

    let mut events = two
        .event_stream(v2::EventStreamRequest {})
        .await
        .expect("a version 2 event stream")
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, events.message())
        .await
        .expect("an event within the patience")
        .expect("a healthy stream")
        .expect("an open stream");
    assert_eq!(first.r#type, "provider_ready");
}

/// `ResolveAll` lists every selected flag: values with their reasons, and
/// the flags without one (disabled, no default variant, failed) with the
/// type's zero, no variant and flagd's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_all_lists_every_flag_with_its_reason() {
    use acqrel_flagd::proto::evaluation::v1::ResolveAllRequest;
    use acqrel_flagd::proto::evaluation::v1::any_flag::Value as Any;

    let daemon = Daemon::ready(&[&testbed_flags()], &[]);
    let mut client = evaluation(&daemon).await;
    let all = client
        .resolve_all(ResolveAllRequest { context: None })
        .await
        .expect("resolve all")
        .into_inner();
    let flags = acqrel_flags::FlagSet::parse(
        &std::fs::read_to_string(testbed_flags()).expect("the testbed file"),
    )
    .expect("the testbed parses")
    .0;
    let listed: std::collections::BTreeSet<&str> = all.flags.keys().map(String::as_str).collect();
    let every: std::collections::BTreeSet<&str> = flags.iter().map(|f| f.key()).collect();
    assert_eq!(listed, every);
    let answer = |key: &str| {
        let flag = &all.flags[key];
        (
            flag.value.clone(),
            flag.reason.as_str(),
            flag.variant.as_str(),
        )
    };
    assert_eq!(
        answer("café"),
        (
            Some(Any::StringValue("espresso".into())),
            "STATIC",
            "espresso"
        )
    );
    assert_eq!(
        answer("disabled-flag"),
        (Some(Any::BoolValue(false)), "DISABLED", "")
    );
    assert_eq!(
        answer("null-default-variant"),
        (Some(Any::StringValue(String::new())), "DEFAULT", "")
    );
    assert_eq!(
        answer("broken-targeting"),
        (Some(Any::BoolValue(false)), "ERROR", "")
    );
    let set = all.metadata.expect("the flag set's metadata");
    assert_eq!(set.fields["flagSetId"], proto_string("testbed"));
}

/// A xorshift64 generator: the same contexts on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self) -> String {
        let len = 1 + self.next() % 12;
        (0..len)
            .map(|_| {
                char::from(b"abcdefghijklmnopqrstuvwxyz0123456789-_"[(self.next() % 38) as usize])
            })
            .collect()
    }
}

fn proto_string(text: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::StringValue(text.to_owned())),
    }
}

/// `new-checkout`'s 20/80 split for `targeting_key` under both bucketing
/// inputs, as `(flagd, provider)`: whether each puts the key in `on`.
///
/// Both take the bucket as `(murmur3(input) × 100) >> 32`, but of different
/// inputs. acqrel-flags implements flagd's v2 rule, which hashes the flag
/// key and the targeting key as one string. `open-feature-flagd` 0.3's
/// in-process evaluator (its `flagd-evaluation-engine` 0.1) already follows
/// the newer CBOR rule (flagd-testbed's `fractional-v3` cases), which
/// hashes the CBOR encoding of the array `[flagKey, targetingKey]`. The two
/// agree for about two keys in three; for the rest the provider and the
/// server must disagree, each by its own rule.
fn new_checkout_on(targeting_key: &str) -> (bool, bool) {
    fn on(input: &[u8]) -> bool {
        (u64::from(murmur3_x86_32(input, 0)) * 100) >> 32 < 20
    }
    // CBOR: an array of two (0x82), then each text string as 0x60 | length
    // (every string here is shorter than 24 bytes) and its bytes.
    let mut cbor = vec![0x82];
    for text in ["new-checkout", targeting_key] {
        assert!(text.len() < 24, "{text} needs a longer CBOR header");
        cbor.push(0x60 | text.len() as u8);
        cbor.extend_from_slice(text.as_bytes());
    }
    (
        on(format!("new-checkout{targeting_key}").as_bytes()),
        on(&cbor),
    )
}

/// 300 random contexts against the shipped example's targeted flags
/// (`support-channel`, `staff-tools`) and its fractional one
/// (`new-checkout`): the in-process provider, synced from the sync port,
/// answers as the evaluation port does, except where the two fractional
/// bucketing inputs part (see [`new_checkout_on`]), and there each side
/// follows its own rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_provider_evaluates_like_the_server() {
    let daemon = Daemon::ready(&[&example_flags()], &[]);
    let local = client(daemon.sync.port(), ResolverType::InProcess, "in-process").await;
    let mut server = evaluation(&daemon).await;
    // The in-process provider answers from its first sync; wait for it.
    eventually_async("the in-process provider's first sync", || async {
        local.get_bool_value("dark-mode", None, None).await == Ok(true)
    })
    .await;

    let domains = [
        "example.com",
        "bigcorp.com",
        "mail.test",
        "bigcorp.com.evil",
    ];
    let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
    let (mut phone, mut staff, mut checkout_on, mut bucketed_apart) = (0, 0, 0, 0);
    for _ in 0..300 {
        let key = random.word();
        let email = format!(
            "{}@{}",
            random.word(),
            domains[(random.next() % domains.len() as u64) as usize]
        );
        let context = EvaluationContext::default()
            .with_targeting_key(key.clone())
            .with_custom_field("email", email.clone());
        let proto = prost_types::Struct {
            fields: [
                ("targetingKey".to_owned(), proto_string(&key)),
                ("email".to_owned(), proto_string(&email)),
            ]
            .into(),
        };

        let served = server
            .resolve_string(ResolveStringRequest {
                flag_key: "support-channel".to_owned(),
                context: Some(proto.clone()),
            })
            .await
            .expect("support-channel")
            .into_inner()
            .value;
        let evaluated = local
            .get_string_value("support-channel", Some(&context), None)
            .await
            .expect("support-channel in process");
        assert_eq!(evaluated, served, "support-channel for {key} <{email}>");
        phone += usize::from(served == "phone");

        for flag in ["new-checkout", "staff-tools"] {
            let served = server
                .resolve_boolean(ResolveBooleanRequest {
                    flag_key: flag.to_owned(),
                    context: Some(proto.clone()),
                })
                .await
                .expect(flag)
                .into_inner()
                .value;
            let evaluated = local
                .get_bool_value(flag, Some(&context), None)
                .await
                .expect(flag);
            if flag == "new-checkout" {
                let (by_flagd, by_provider) = new_checkout_on(&key);
                assert_eq!(served, by_flagd, "the server buckets {key} by flagd's rule");
                assert_eq!(
                    evaluated, by_provider,
                    "the provider buckets {key} by its rule"
                );
                if by_flagd != by_provider {
                    bucketed_apart += 1;
                    continue;
                }
            }
            assert_eq!(evaluated, served, "{flag} for {key} <{email}>");
            if served {
                match flag {
                    "new-checkout" => checkout_on += 1,
                    _ => staff += 1,
                }
            }
        }
    }
    // Both branches of every flag were compared, not one answer 300 times.
    for (what, count) in [
        ("phone", phone),
        ("staff", staff),
        ("new-checkout on", checkout_on),
        ("new-checkout bucketed apart", bucketed_apart),
    ] {
        assert!(0 < count && count < 300, "{what}: {count} of 300");
    }
}

/// A context struct nested `depth` lists deep around a null.
fn nested(depth: usize) -> prost_types::Value {
    let mut value = prost_types::Value {
        kind: Some(Kind::NullValue(0)),
    };
    for _ in 0..depth {
        value = prost_types::Value {
            kind: Some(Kind::ListValue(prost_types::ListValue {
                values: vec![value],
            })),
        };
    }
    value
}

/// Bad input over the wire gets flagd's status codes and never a crash: an
/// unknown flag, a wrong type, a context with a NaN (INVALID_ARGUMENT) or
/// 1,000 levels of nesting (INTERNAL: it cannot be decoded), and selectors the server cannot honour, on both ports. After
/// all of them the server still answers on a connection that saw them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_flagds_codes_and_the_server_keeps_answering() {
    let mut daemon = Daemon::ready(&[&example_flags()], &[]);
    let mut server = evaluation(&daemon).await;
    let boolean = |flag: &str, context: Option<prost_types::Struct>| ResolveBooleanRequest {
        flag_key: flag.to_owned(),
        context,
    };
    let context = |value: prost_types::Value| {
        Some(prost_types::Struct {
            fields: [
                ("targetingKey".to_owned(), proto_string("u1")),
                ("x".to_owned(), value),
            ]
            .into(),
        })
    };

    let unknown = server
        .resolve_boolean(boolean("no-such-flag", None))
        .await
        .expect_err("an unknown flag");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

    let wrong_type = server
        .resolve_string(ResolveStringRequest {
            flag_key: "dark-mode".to_owned(),
            context: None,
        })
        .await
        .expect_err("a boolean flag asked for a string");
    assert_eq!(wrong_type.code(), tonic::Code::InvalidArgument);
    assert!(
        wrong_type.message().starts_with("TYPE_MISMATCH"),
        "{wrong_type:?}"
    );

    let nan = prost_types::Value {
        kind: Some(Kind::NumberValue(f64::NAN)),
    };
    let refused = server
        .resolve_boolean(boolean("dark-mode", context(nan)))
        .await
        .expect_err("a NaN in the context");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    // prost stops decoding at 100 nested messages (two per list level here),
    // before the server's own 64-level limit is reached: the request is
    // refused while decoding, INTERNAL, as gRPC servers answer a request
    // they cannot unmarshal.
    let refused = server
        .resolve_boolean(boolean("dark-mode", context(nested(1_000))))
        .await
        .expect_err("1,000 levels of nesting");
    assert_eq!(refused.code(), tonic::Code::Internal, "{refused:?}");
    assert!(refused.message().contains("recursion limit"), "{refused:?}");

    for selector in ["source=flags.json", "flags.json", "flagSetId"] {
        let mut request = tonic::Request::new(boolean("dark-mode", None));
        request
            .metadata_mut()
            .insert("flagd-selector", selector.parse().expect("ASCII"));
        let refused = server.resolve_boolean(request).await.expect_err(selector);
        assert_eq!(
            refused.code(),
            tonic::Code::InvalidArgument,
            "{selector}: {refused:?}"
        );
    }
    let mut sync = FlagSyncServiceClient::new(channel(daemon.sync).await);
    let refused = sync
        .sync_flags(SyncFlagsRequest {
            selector: "source=flags.json".to_owned(),
            ..SyncFlagsRequest::default()
        })
        .await
        .expect_err("an unsupported sync selector");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    // The same connection is still answered, and so is a nested context
    // within the limit.
    let answer = server
        .resolve_boolean(boolean("dark-mode", context(nested(30))))
        .await
        .expect("a well-formed request")
        .into_inner();
    assert!(answer.value);
    assert!(
        daemon.child.try_wait().expect("try_wait").is_none(),
        "acqrel-flagd exited"
    );
    assert_eq!(daemon.manage("/healthz").status, 200);
}
