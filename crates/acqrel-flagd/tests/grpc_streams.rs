//! The gRPC streams of the running binary under many subscribers: 1,000
//! `EventStream` and `SyncFlags` streams see every change in generation
//! order; a stream that stops reading holds up neither a reload nor another
//! stream and, read again, catches up on the latest flags; a disconnect
//! lowers the open-stream gauge back; shutdown ends a stream with
//! UNAVAILABLE, and a client that reconnects to the restarted daemon on the
//! same port gets the current flags.
//!
//! Each change adds one flag, `step-N`, so every message says which change
//! it carries. The tests wait for conditions, never for time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use acqrel_flagd::proto::evaluation::v1::service_client::ServiceClient;
use acqrel_flagd::proto::evaluation::v1::{
    EventStreamRequest, EventStreamResponse, ResolveBooleanRequest,
};
use acqrel_flagd::proto::sync::v1::flag_sync_service_client::FlagSyncServiceClient;
use acqrel_flagd::proto::sync::v1::{SyncFlagsRequest, SyncFlagsResponse};
use common::{Daemon, PATIENCE, TempDir, channel, eventually_async};
use prost_types::value::Kind;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// The flag file after `steps` changes: `base` plus `step-1`..`step-N`,
/// each with a `padding`-byte string variant.
fn flags(steps: usize, padding: usize) -> String {
    let mut flags = serde_json::Map::new();
    flags.insert(
        "base".to_owned(),
        json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}),
    );
    for step in 1..=steps {
        flags.insert(
            format!("step-{step}"),
            json!({
                "state": "ENABLED",
                "variants": {"a": "x".repeat(padding), "b": "b"},
                "defaultVariant": "b"
            }),
        );
    }
    json!({ "flags": flags }).to_string()
}

/// A connection whose HTTP/2 windows, stream and connection, are 64 KiB
/// (the protocol's default; the client's own default is megabytes): a
/// stream that is not read stops the server's sending after 64 KiB.
async fn narrow_channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("connect")
}

/// An event stream from `client`, past its first message, which must be
/// `provider_ready`.
async fn ready_event_stream(
    client: &mut ServiceClient<Channel>,
) -> tonic::Streaming<EventStreamResponse> {
    let mut stream = client
        .event_stream(EventStreamRequest::default())
        .await
        .expect("an event stream")
        .into_inner();
    let ready = stream.message().await.expect("a healthy stream");
    assert_eq!(ready.expect("a first event").r#type, "provider_ready");
    stream
}

/// The `step-N` keys a `configuration_change` names, sorted by N.
fn changed_steps(event: &EventStreamResponse) -> Vec<usize> {
    let Some(Kind::StructValue(flags)) = event
        .data
        .as_ref()
        .and_then(|data| data.fields.get("flags"))
        .and_then(|flags| flags.kind.as_ref())
    else {
        panic!("a change names its flags: {event:?}");
    };
    let mut steps: Vec<usize> = flags
        .fields
        .keys()
        .filter_map(|key| key.strip_prefix("step-")?.parse().ok())
        .collect();
    steps.sort_unstable();
    steps
}

/// How many `step-N` flags a sync message's configuration holds.
fn synced_steps(message: &SyncFlagsResponse) -> usize {
    let document: Value =
        serde_json::from_str(&message.flag_configuration).expect("the configuration is JSON");
    document["flags"]
        .as_object()
        .expect("a flags object")
        .keys()
        .filter(|key| key.starts_with("step-"))
        .count()
}

/// Reads an event stream to its end; each change must name exactly the
/// next step. Publishes the last step seen in `seen`.
async fn follow_events(
    mut stream: tonic::Streaming<EventStreamResponse>,
    seen: Arc<AtomicUsize>,
) -> Result<(), String> {
    while let Some(event) = stream
        .message()
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
    {
        if event.r#type != "configuration_change" {
            continue;
        }
        // Relaxed, here and below: `seen` is a progress number that only
        // this task writes and the test polls; it publishes no other data
        // (the reader's verdict comes back through its JoinHandle).
        let expected = seen.load(Ordering::Relaxed) + 1;
        let steps = changed_steps(&event);
        if steps != [expected] {
            return Err(format!("expected step {expected}, got {steps:?}"));
        }
        seen.store(expected, Ordering::Relaxed); // Relaxed: see above.
    }
    Ok(())
}

/// Reads a sync stream to its end; each message must hold exactly one
/// step more than the one before. Publishes the steps held in `seen`.
async fn follow_syncs(
    mut stream: tonic::Streaming<SyncFlagsResponse>,
    seen: Arc<AtomicUsize>,
) -> Result<(), String> {
    let mut first = true;
    while let Some(message) = stream
        .message()
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
    {
        let steps = synced_steps(&message);
        let expected = if first {
            0
        } else {
            // Relaxed: a progress number only this task writes (see
            // `follow_events`).
            seen.load(Ordering::Relaxed) + 1
        };
        if steps != expected {
            return Err(format!("expected {expected} steps, got {steps}"));
        }
        first = false;
        seen.store(steps, Ordering::Relaxed); // Relaxed: see above.
    }
    Ok(())
}

/// 500 event streams and 500 sync streams, over 10 HTTP/2 connections of
/// each kind, each see the five changes one by one and in order. Each
/// change is written only after every stream has seen the one before, so a
/// merged or skipped change is an error here. SIGTERM then ends all 1,000
/// with UNAVAILABLE, which the readers report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_see_every_change_in_generation_order() {
    const PER_KIND: usize = 500;
    const CONNECTIONS: usize = 10;
    const STEPS: usize = 5;
    let dir = TempDir::new("grpc-streams-order");
    let file = dir.write("flags.json", &flags(0, 1));
    let mut daemon = Daemon::ready(&[&file], &[]);

    let mut readers = Vec::new();
    let mut events_seen = Vec::new();
    let mut syncs_seen = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut events = ServiceClient::new(channel(daemon.evaluation).await);
        let mut syncs = FlagSyncServiceClient::new(channel(daemon.sync).await);
        for _ in 0..PER_KIND / CONNECTIONS {
            let stream = ready_event_stream(&mut events).await;
            let seen = Arc::new(AtomicUsize::new(0));
            events_seen.push(seen.clone());
            readers.push(tokio::spawn(follow_events(stream, seen)));

            let stream = syncs
                .sync_flags(SyncFlagsRequest::default())
                .await
                .expect("a sync stream")
                .into_inner();
            let seen = Arc::new(AtomicUsize::new(0));
            syncs_seen.push(seen.clone());
            readers.push(tokio::spawn(follow_syncs(stream, seen)));
        }
    }
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_grpc_streams{method="EventStream"}"#),
        PER_KIND as f64
    );
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_grpc_streams{method="SyncFlags"}"#),
        PER_KIND as f64
    );

    for step in 1..=STEPS {
        dir.write("flags.json", &flags(step, 1));
        eventually_async(&format!("all 1,000 streams at step {step}"), || {
            let all = events_seen
                .iter()
                .chain(&syncs_seen)
                // Relaxed: the readers' progress numbers, polled; they
                // pair with nothing (see `follow_events`).
                .all(|seen| seen.load(Ordering::Relaxed) == step);
            let readers_alive = readers.iter().all(|reader| !reader.is_finished());
            assert!(readers_alive, "a reader stopped early at step {step}");
            async move { all }
        })
        .await;
    }

    daemon.signal("TERM");
    for reader in readers {
        let ended = reader.await.expect("a reader task");
        let error = ended.expect_err("the stream ends with a status at shutdown");
        assert!(error.starts_with("Unavailable:"), "{error}");
    }
    assert!(daemon.wait().success());
}

/// One event stream and one sync stream are opened and never read while
/// 30 changes, each adding a 4 KiB flag, go through: the sync messages
/// add up to 1.9 MB, far beyond the 64 KiB the stalled connections' HTTP/2
/// windows let the server send. Every reload still applies (the generation
/// metric), a reading sync stream sees every change, and the stalled sync
/// stream, read at last, catches up on the 30th change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stops_reading_holds_up_neither_reloads_nor_others() {
    const STEPS: usize = 30;
    const PADDING: usize = 4096;
    let dir = TempDir::new("grpc-streams-stalled");
    let file = dir.write("flags.json", &flags(0, PADDING));
    let daemon = Daemon::ready(&[&file], &[]);

    // The stalled streams, each on its own connection.
    let mut stalled_events = ServiceClient::new(narrow_channel(daemon.evaluation).await)
        .event_stream(EventStreamRequest::default())
        .await
        .expect("an event stream")
        .into_inner();
    let mut stalled_sync = FlagSyncServiceClient::new(narrow_channel(daemon.sync).await)
        .sync_flags(SyncFlagsRequest::default())
        .await
        .expect("a sync stream")
        .into_inner();
    let reading = FlagSyncServiceClient::new(channel(daemon.sync).await)
        .sync_flags(SyncFlagsRequest::default())
        .await
        .expect("a sync stream")
        .into_inner();
    let seen = Arc::new(AtomicUsize::new(0));
    let reader = tokio::spawn(follow_syncs(reading, seen.clone()));

    let generation = daemon.metric("acqrel_flagd_flag_set_generation");
    for step in 1..=STEPS {
        dir.write("flags.json", &flags(step, PADDING));
        eventually_async(&format!("the reading stream at step {step}"), || {
            // Relaxed: the reader's progress number (see `follow_events`).
            let at = seen.load(Ordering::Relaxed);
            async move { at == step }
        })
        .await;
        assert!(!reader.is_finished(), "the reading stream ended");
    }
    assert_eq!(
        daemon.metric("acqrel_flagd_flag_set_generation"),
        generation + STEPS as f64,
        "every reload applied"
    );

    // Read at last, the stalled sync stream reaches the latest flags,
    // with what it could not take in between dropped.
    let mut last = 0;
    let mut messages = 0;
    while last < STEPS {
        let message = tokio::time::timeout(PATIENCE, stalled_sync.message())
            .await
            .expect("a message within the patience")
            .expect("a healthy stream")
            .expect("an open stream");
        last = synced_steps(&message);
        messages += 1;
    }
    assert!(messages < STEPS, "{messages} messages: none was merged");
    // The stalled event stream, too, is still open and answers.
    let ready = tokio::time::timeout(PATIENCE, stalled_events.message())
        .await
        .expect("an event within the patience")
        .expect("a healthy stream")
        .expect("an open stream");
    assert_eq!(ready.r#type, "provider_ready");
}

/// Streams that their clients drop leave the open-stream gauges: five of
/// each kind open, then none once the connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_leaves_the_stream_gauge() {
    let dir = TempDir::new("grpc-streams-gauge");
    let file = dir.write("flags.json", &flags(0, 1));
    let daemon = Daemon::ready(&[&file], &[]);
    let events_gauge = r#"acqrel_flagd_grpc_streams{method="EventStream"}"#;
    let syncs_gauge = r#"acqrel_flagd_grpc_streams{method="SyncFlags"}"#;

    let mut streams = Vec::new();
    let mut syncs = Vec::new();
    for _ in 0..5 {
        let mut events = ServiceClient::new(channel(daemon.evaluation).await);
        streams.push(
            events
                .event_stream(EventStreamRequest::default())
                .await
                .expect("an event stream")
                .into_inner(),
        );
        let mut sync = FlagSyncServiceClient::new(channel(daemon.sync).await);
        syncs.push(
            sync.sync_flags(SyncFlagsRequest::default())
                .await
                .expect("a sync stream")
                .into_inner(),
        );
    }
    assert_eq!(daemon.metric(events_gauge), 5.0);
    assert_eq!(daemon.metric(syncs_gauge), 5.0);

    drop(streams);
    drop(syncs);
    eventually_async("the gauges back at zero", || {
        let open = daemon.metric(events_gauge) + daemon.metric(syncs_gauge);
        async move { open == 0.0 }
    })
    .await;
}

/// SIGTERM ends an event stream with `provider_shutdown`, as flagd does,
/// then UNAVAILABLE, the status flagd's providers reconnect on. A daemon restarted on the same port with an
/// edited file answers the reconnected client with the current flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_streams_unavailable_and_a_reconnect_gets_current_flags() {
    let dir = TempDir::new("grpc-streams-restart");
    let file = dir.write("flags.json", &flags(0, 1));
    let mut daemon = Daemon::ready(&[&file], &[]);
    let port = daemon.evaluation.port().to_string();
    let mut stream =
        ready_event_stream(&mut ServiceClient::new(channel(daemon.evaluation).await)).await;

    daemon.signal("TERM");
    let mut last = None;
    let ended = loop {
        match tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the stream ends within the patience")
        {
            Ok(Some(message)) => last = Some(message.r#type),
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(last.as_deref(), Some("provider_shutdown"));
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(daemon.wait().success());

    dir.write("flags.json", &flags(1, 1));
    let restarted = Daemon::ready(&[&file], &["--port", &port]);
    assert_eq!(restarted.evaluation.port().to_string(), port);
    let mut client = ServiceClient::new(channel(restarted.evaluation).await);
    let answer = client
        .resolve_boolean(ResolveBooleanRequest {
            flag_key: "base".to_owned(),
            context: None,
        })
        .await
        .expect("base, after the restart")
        .into_inner();
    assert!(answer.value);
    ready_event_stream(&mut client).await;
    let step = ServiceClient::new(channel(restarted.evaluation).await)
        .resolve_string(acqrel_flagd::proto::evaluation::v1::ResolveStringRequest {
            flag_key: "step-1".to_owned(),
            context: None,
        })
        .await
        .expect("the edited file's new flag")
        .into_inner();
    assert_eq!(step.value, "b");
}
