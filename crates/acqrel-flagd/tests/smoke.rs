//! The harness itself works: start, evaluate, stream, stop.

mod common;

use common::{Daemon, EventStream, example_flags};

#[test]
fn starts_evaluates_streams_and_stops_on_sigterm() {
    let flags = example_flags();
    let mut daemon = Daemon::ready(&[&flags], &[]);
    let answer = daemon.post("/ofrep/v1/evaluate/flags/dark-mode", r#"{"context": {}}"#);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["value"], true);
    let mut stream = EventStream::open(daemon.ofrep, None);
    assert_eq!(stream.status, 200);
    let opening = stream.next().expect("the opening comment");
    assert_eq!(opening.comments, ["acqrel-flagd change stream"]);
    daemon.signal("TERM");
    assert!(stream.next().is_none(), "the stream ends on shutdown");
    assert!(daemon.wait().success());
}
