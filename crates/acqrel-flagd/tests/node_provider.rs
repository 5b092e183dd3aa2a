//! flagd's JavaScript provider (`@openfeature/flagd-provider`, RPC mode,
//! pinned in `tests/node/package-lock.json`) against a real acqrel-flagd:
//! the provider speaks `flagd.evaluation.v2.Service`, resolving every
//! value type and opening `EventStream`, which flagd's Rust provider never
//! does. So these show what no Rust client here can: a file edit reaching
//! a provider as a configuration-changed event naming the changed flags,
//! and a provider that lost its daemon reporting stale, reconnecting to a
//! restarted one and reading its new flags.
//!
//! The provider runs as a child process (`tests/node/rpc_provider.mjs`)
//! that prints one JSON line per provider event and per answered command.
//! `cargo xtask install-node-clients` installs it; without it these tests
//! fail and say so.

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, PATIENCE, TempDir, eventually};
use serde_json::{Value as Json, json};

// ===== the provider process =====

/// `tests/node`: the script and its `node_modules`.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `rpc_provider.mjs` running against one evaluation port, killed on drop.
struct Provider {
    child: Child,
    stdin: ChildStdin,
    /// Lines of its stdout, read by a thread.
    lines: Receiver<String>,
    /// Lines already read that no wait has taken yet, in order.
    backlog: VecDeque<Json>,
    /// Everything it wrote to stderr so far, for failure messages.
    stderr: Arc<Mutex<String>>,
}

impl Provider {
    /// Starts the provider on `port` and waits for its first `ready`
    /// (after a retry, if its first connection failed).
    fn ready(port: u16) -> Provider {
        let dir = node_dir();
        assert!(
            dir.join("node_modules/@openfeature/flagd-provider")
                .is_dir(),
            "{} has no flagd provider installed: run `cargo xtask install-node-clients`",
            dir.join("node_modules").display()
        );
        let node = std::env::var_os("ACQREL_NODE").unwrap_or_else(|| "node".into());
        let mut command = Command::new(&node);
        command
            .arg(dir.join("rpc_provider.mjs"))
            .arg(port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The provider reads its defaults from FLAGD_* variables; the
        // options the script passes must be all that configures it.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FLAGD_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {node:?} (Node.js on PATH): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");

        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        let mut provider = Provider {
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
            stderr,
        };
        provider.event(&["ready"]);
        // What came before is the failed first try of a slow start (an
        // `error` line), not an event of the test's.
        provider.backlog.clear();
        provider
    }

    /// The first line, already read or still to come, that `matches`;
    /// the lines before it stay for later waits.
    ///
    /// # Panics
    ///
    /// If none comes within [`PATIENCE`] or the process ends first: the
    /// message has the unmatched lines and its stderr.
    fn wait_for(&mut self, what: &str, matches: impl Fn(&Json) -> bool) -> Json {
        if let Some(at) = self.backlog.iter().position(&matches) {
            return self.backlog.remove(at).expect("a position in the backlog");
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let why = match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let json: Json = serde_json::from_str(&line).unwrap_or_else(|e| {
                        self.fail(&format!("a line that is not JSON ({e}): {line:?}"))
                    });
                    if matches(&json) {
                        return json;
                    }
                    self.backlog.push_back(json);
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => format!("no {what} within {PATIENCE:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    format!("the provider closed its stdout before {what}")
                }
            };
            self.fail(&why);
        }
    }

    /// Panics with `why`, the lines no wait took, and the stderr so far.
    fn fail(&self, why: &str) -> ! {
        let unread: Vec<String> = self.backlog.iter().map(Json::to_string).collect();
        panic!(
            "{why}\nunread lines:\n{}\nprovider stderr:\n{}",
            unread.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// The next provider event whose name is one of `names`.
    fn event(&mut self, names: &[&str]) -> Json {
        let what = format!("{names:?} event");
        self.wait_for(&what, |line| {
            line["event"]
                .as_str()
                .is_some_and(|name| names.contains(&name))
        })
    }

    /// Sends one command line.
    fn send(&mut self, command: &Json) {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| self.fail(&format!("cannot write to the provider: {e}")));
    }

    /// `client.get<Type>Details(key, default, context)`, as the script
    /// prints it.
    fn resolve(&mut self, kind: &str, key: &str, default: Json, context: Json) -> Json {
        self.send(&json!({
            "op": "resolve", "type": kind, "key": key, "default": default, "context": context,
        }));
        self.wait_for(&format!("answer for {key:?}"), |line| {
            line["op"] == "resolve" && line["key"] == key
        })
    }

    /// Closes the SDK and waits (bounded) for a clean exit.
    fn close(mut self) {
        self.send(&json!({"op": "close"}));
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("the provider did not exit within {PATIENCE:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !status.success() {
            self.fail(&format!("the provider exited with {status}"));
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ===== flag files =====

/// Every kind of flag the provider resolves.
const EVERY_TYPE: &str = r#"{
  "metadata": { "flagSetId": "storefront" },
  "flags": {
    "dark-mode": {
      "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "on"
    },
    "greeting": {
      "state": "ENABLED", "variants": { "en": "hello", "fr": "bonjour" }, "defaultVariant": "en",
      "metadata": { "owner": "copy" }
    },
    "ratio": {
      "state": "ENABLED", "variants": { "quarter": 0.25, "half": 0.5 }, "defaultVariant": "quarter"
    },
    "retries": {
      "state": "ENABLED", "variants": { "few": 3, "many": 10 }, "defaultVariant": "few"
    },
    "theme": {
      "state": "ENABLED",
      "variants": { "blue": { "color": "blue", "size": 2, "tags": ["a", "b"] }, "plain": {} },
      "defaultVariant": "blue"
    },
    "beta": {
      "state": "ENABLED", "variants": { "insider": "insider", "public": "public" },
      "defaultVariant": "public",
      "targeting": { "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "insider", null] }
    },
    "retired": {
      "state": "DISABLED", "variants": { "old": "old" }, "defaultVariant": "old"
    },
    "unset": {
      "state": "ENABLED", "variants": { "five": 5 }
    }
  }
}"#;

/// A file with `banner` showing `text`, and `extra` when `with_extra`.
fn banner_flags(text: &str, with_extra: bool) -> String {
    let mut flags = json!({
        "banner": {"state": "ENABLED", "variants": {"shown": text}, "defaultVariant": "shown"},
        "dark-mode": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"},
    });
    if with_extra {
        flags["extra"] = json!({"state": "ENABLED", "variants": {"n": 7}, "defaultVariant": "n"});
    }
    json!({ "flags": flags }).to_string()
}

/// The parts of an answer the tests compare: value, variant, reason,
/// error code.
fn outcome(answer: &Json) -> Json {
    json!([
        answer["value"],
        answer["variant"],
        answer["reason"],
        answer["errorCode"]
    ])
}

// ===== tests =====

#[test]
fn the_javascript_provider_resolves_every_type_over_v2() {
    let dir = TempDir::new("node-every-type");
    let file = dir.write("flags.json", EVERY_TYPE);
    let daemon = Daemon::ready(&[&file], &[]);
    let mut provider = Provider::ready(daemon.evaluation.port());
    let none = json!({});

    let cases = [
        (
            "boolean",
            "dark-mode",
            json!(false),
            &none,
            json!([true, "on", "STATIC", null]),
        ),
        (
            "string",
            "greeting",
            json!("x"),
            &none,
            json!(["hello", "en", "STATIC", null]),
        ),
        (
            "number",
            "ratio",
            json!(9),
            &none,
            json!([0.25, "quarter", "STATIC", null]),
        ),
        // The JavaScript SDK has one number type: integers come over
        // ResolveFloat too.
        (
            "number",
            "retries",
            json!(9),
            &none,
            json!([3, "few", "STATIC", null]),
        ),
        (
            "object",
            "theme",
            json!({}),
            &none,
            json!([{"color": "blue", "size": 2, "tags": ["a", "b"]}, "blue", "STATIC", null]),
        ),
        (
            "string",
            "beta",
            json!("x"),
            &json!({"email": "ada@example.com"}),
            json!(["insider", "insider", "TARGETING_MATCH", null]),
        ),
        // The rule gives null: the default variant, reason DEFAULT.
        (
            "string",
            "beta",
            json!("x"),
            &json!({"email": "bob@elsewhere.test"}),
            json!(["public", "public", "DEFAULT", null]),
        ),
        // No value over v2 where the caller's default applies.
        (
            "string",
            "retired",
            json!("caller's"),
            &none,
            json!(["caller's", null, "DISABLED", null]),
        ),
        (
            "number",
            "unset",
            json!(9),
            &none,
            json!([9, null, "DEFAULT", null]),
        ),
        (
            "string",
            "missing",
            json!("fallback"),
            &none,
            json!(["fallback", null, "ERROR", "FLAG_NOT_FOUND"]),
        ),
        (
            "boolean",
            "greeting",
            json!(true),
            &none,
            json!([true, null, "ERROR", "TYPE_MISMATCH"]),
        ),
    ];
    for (kind, key, default, context, expected) in cases {
        let answer = provider.resolve(kind, key, default, context.clone());
        assert_eq!(
            outcome(&answer),
            expected,
            "{kind} {key} {context}: {answer}"
        );
    }
    // The set's metadata merged under the flag's, as flagd sends it.
    let greeting = provider.resolve("string", "greeting", json!("x"), json!({}));
    assert_eq!(
        greeting["flagMetadata"],
        json!({"flagSetId": "storefront", "owner": "copy"})
    );

    // Every call above reached this daemon, counted by method and code,
    // and the provider holds one event stream open on it.
    let expected = [
        ("ResolveBoolean", "OK", 1.0),
        ("ResolveBoolean", "INVALID_ARGUMENT", 1.0),
        ("ResolveString", "OK", 5.0),
        ("ResolveString", "NOT_FOUND", 1.0),
        ("ResolveFloat", "OK", 3.0),
        ("ResolveObject", "OK", 1.0),
        ("ResolveInt", "OK", 0.0),
    ];
    let counts = || {
        expected
            .iter()
            .map(|(method, code, _)| {
                daemon.metric(&format!(
                    r#"acqrel_flagd_grpc_requests_total{{method="{method}",code="{code}"}}"#
                ))
            })
            .collect::<Vec<_>>()
    };
    let want: Vec<f64> = expected.iter().map(|e| e.2).collect();
    eventually("the provider's calls in the metrics", || counts() == want);
    // At least one: a first connection the provider retried opens another.
    let streams = r#"acqrel_flagd_grpc_requests_total{method="EventStream",code="OK"}"#;
    assert!(daemon.metric(streams) >= 1.0);
    assert_eq!(
        daemon.metric(r#"acqrel_flagd_grpc_streams{method="EventStream"}"#),
        1.0
    );
    provider.close();
    eventually("the event stream closed with the provider", || {
        daemon.metric(r#"acqrel_flagd_grpc_streams{method="EventStream"}"#) == 0.0
    });
}

#[test]
fn a_file_edit_raises_configuration_changed_in_the_javascript_provider() {
    let dir = TempDir::new("node-config-change");
    let file = dir.write("flags.json", &banner_flags("old", false));
    let daemon = Daemon::ready(&[&file], &[]);
    let mut provider = Provider::ready(daemon.evaluation.port());
    let before = provider.resolve("string", "banner", json!("x"), json!({}));
    assert_eq!(before["value"], "old", "{before}");

    // `banner` changes, `extra` is new, `dark-mode` stays as it was.
    dir.write("flags.json", &banner_flags("new", true));
    let changed = provider.event(&["configuration_changed"]);
    let mut keys: Vec<&str> = changed["flagsChanged"]
        .as_array()
        .unwrap_or_else(|| panic!("no flagsChanged list: {changed}"))
        .iter()
        .map(|k| k.as_str().expect("a flag key"))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["banner", "extra"], "{changed}");

    let after = provider.resolve("string", "banner", json!("x"), json!({}));
    assert_eq!(outcome(&after), json!(["new", "shown", "STATIC", null]));
    let extra = provider.resolve("number", "extra", json!(0), json!({}));
    assert_eq!(outcome(&extra), json!([7, "n", "STATIC", null]));
    provider.close();
}

#[test]
fn the_javascript_provider_reconnects_after_shutdown_and_gets_the_new_flags() {
    let dir = TempDir::new("node-reconnect");
    let file = dir.write("flags.json", &banner_flags("before", false));
    let mut daemon = Daemon::ready(&[&file], &[]);
    let port = daemon.evaluation.port();
    let mut provider = Provider::ready(port);
    let first = provider.resolve("string", "banner", json!("x"), json!({}));
    assert_eq!(first["value"], "before", "{first}");

    daemon.signal("TERM");
    assert!(daemon.wait().success(), "acqrel-flagd exits 0 on SIGTERM");
    let lost = provider.event(&["stale", "error"]);
    assert!(lost["message"].is_string(), "{lost}");

    dir.write("flags.json", &banner_flags("after", true));
    let restarted = Daemon::ready(&[&file], &["--port", &port.to_string()]);
    assert_eq!(restarted.evaluation.port(), port);
    provider.event(&["ready"]);
    let again = provider.resolve("string", "banner", json!("x"), json!({}));
    assert_eq!(outcome(&again), json!(["after", "shown", "STATIC", null]));
    let extra = provider.resolve("number", "extra", json!(0), json!({}));
    assert_eq!(extra["value"], 7, "{extra}");
    provider.close();
}
