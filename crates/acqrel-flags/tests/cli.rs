//! The `acqrel-flags` binary, run as a process: `validate` on the shipped
//! example and on broken files, `eval` over the shipped requests (every
//! reason), malformed request lines in a stream, single evaluations, usage
//! errors, a result flushed per line, and a reader that closes the pipe.
// Miri cannot start processes.
#![cfg(not(miri))]

#[path = "../../acqrel-core/tests/common/mod.rs"]
mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use common::HANG_GUARD;
use serde_json::{Value as Json, json};

// ===== helpers =====

const BIN: &str = env!("CARGO_BIN_EXE_acqrel-flags");

/// A file shipped in `examples/`.
fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    path.to_str().expect("the crate's path is UTF-8").to_owned()
}

/// A path under the temporary directory that no other test (or test run)
/// uses; the file, if the test creates it, is removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new() -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: only the counter's uniqueness matters, which fetch_add
        // gives under any ordering; nothing is published through it.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("acqrel-flags-cli-{}-{n}.json", std::process::id());
        TempPath(std::env::temp_dir().join(name))
    }

    /// A new temporary file holding `contents`.
    fn with(contents: &str) -> TempPath {
        let path = TempPath::new();
        std::fs::write(&path.0, contents).expect("write a temporary file");
        path
    }

    fn as_str(&self) -> &str {
        self.0
            .to_str()
            .expect("the temporary directory's path is UTF-8")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        // Absent for a path the test never created.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The runner cargo runs this target's binaries with, if the environment
/// names one (`CARGO_TARGET_<TRIPLE>_RUNNER`, inherited from cargo; the
/// triple is matched by its architecture). `cargo xtask test-all-arches`
/// sets it to `qemu-<arch> -L <sysroot>`: these tests then run inside
/// qemu-user, which cannot exec another foreign binary by itself (there is
/// no binfmt_misc registration), so the binary under test is started
/// through the same runner.
fn target_runner() -> Option<Vec<String>> {
    std::env::vars().find_map(|(name, value)| {
        let triple = name
            .strip_prefix("CARGO_TARGET_")?
            .strip_suffix("_RUNNER")?
            .to_ascii_lowercase();
        let words: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
        (triple.starts_with(std::env::consts::ARCH) && !words.is_empty()).then_some(words)
    })
}

/// The binary, started with `args` and every standard stream piped.
fn spawn<S: AsRef<OsStr>>(args: &[S]) -> Child {
    let mut command = match target_runner() {
        Some(runner) => {
            let mut command = Command::new(&runner[0]);
            command.args(&runner[1..]).arg(BIN);
            command
        }
        None => Command::new(BIN),
    };
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start acqrel-flags")
}

/// How a run ended.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// Standard output's lines, each parsed as JSON.
    fn json_lines(&self) -> Vec<Json> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
            })
            .collect()
    }

    /// Checks a usage error: status 2, nothing on standard output, and
    /// `message` as the first line of standard error, followed by the
    /// synopsis.
    fn assert_usage_error(&self, message: &str) {
        assert_eq!(self.code, Some(2), "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        let mut lines = self.stderr.lines();
        assert_eq!(lines.next(), Some(message), "{self:?}");
        assert_eq!(lines.next(), Some(""), "{self:?}");
        assert_eq!(lines.next(), Some("Usage:"), "{self:?}");
    }
}

/// Waits for `child` (whose standard input is already closed or taken), at
/// most [`HANG_GUARD`].
fn finish(child: Child) -> Outcome {
    let (done, wait) = mpsc::channel();
    thread::spawn(move || done.send(child.wait_with_output()));
    let output = wait
        .recv_timeout(HANG_GUARD)
        .expect("acqrel-flags did not exit")
        .expect("wait for acqrel-flags");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("standard output is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("standard error is UTF-8"),
    }
}

/// Writes `input` on a thread of its own (so that a full output pipe cannot
/// deadlock the test), then closes the stream. A binary that exits before
/// reading everything (a usage error) closes the pipe: that write error is
/// expected and ignored.
fn feed(stdin: ChildStdin, input: Vec<u8>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut stdin = stdin;
        let _ = stdin.write_all(&input);
    })
}

/// Runs the binary with `args` and `input` on standard input.
fn run_bytes<S: AsRef<OsStr>>(args: &[S], input: &[u8]) -> Outcome {
    let mut child = spawn(args);
    let writer = feed(child.stdin.take().expect("piped stdin"), input.to_vec());
    let outcome = finish(child);
    writer.join().expect("the stdin writer does not panic");
    outcome
}

/// Runs the binary with `args` and `input` on standard input.
fn run<S: AsRef<OsStr>>(args: &[S], input: &str) -> Outcome {
    run_bytes(args, input.as_bytes())
}

/// The example flag set's own metadata, which every flag without metadata
/// of its own reports.
fn shop_metadata() -> Json {
    json!({"flagSetId": "shop-web", "team": "web"})
}

/// The result line of a successful evaluation.
fn resolved(flag: &str, value: Json, variant: Option<&str>, reason: &str, metadata: Json) -> Json {
    json!({
        "flag": flag, "value": value, "variant": variant, "reason": reason,
        "errorCode": null, "metadata": metadata,
    })
}

/// The result line of an evaluation that failed (the caller's `default`
/// served, no variant).
fn failed(flag: &str, default: Json, code: &str, message: &str, metadata: Json) -> Json {
    json!({
        "flag": flag, "value": default, "variant": null, "reason": "ERROR",
        "errorCode": code, "errorMessage": message, "metadata": metadata,
    })
}

/// The line for a malformed request.
fn malformed(line: u64, error: &str) -> Json {
    json!({"line": line, "error": error})
}

/// A request line for the boolean flag `dark-mode`, and its result.
const DARK_MODE_REQUEST: &str = r#"{"flag": "dark-mode", "type": "boolean", "default": false}"#;

fn dark_mode_result() -> Json {
    resolved(
        "dark-mode",
        json!(true),
        Some("on"),
        "STATIC",
        shop_metadata(),
    )
}

/// A file whose flag `f` has no variants: rejected at `$.flags.f.variants`.
const REJECTED_FILE: &str = r#"{"flags": {"f": {"state": "ENABLED", "variants": {}}}}"#;
const REJECTED_ERROR: &str =
    "$.flags.f.variants: expected at least one variant, found an empty object";

/// A file that loads with one warning: flag `g`'s targeting names an
/// evaluator that does not exist.
const WARNING_FILE: &str = r#"{"flags": {
    "g": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "nope"}},
    "h": {"state": "ENABLED", "variants": {"one": 1}, "defaultVariant": "one"}
}}"#;
const WARNING: &str = r#"$.flags.g.targeting: flag "g" will resolve with PARSE_ERROR: unknown $ref "nope": $evaluators has no such entry"#;

// ===== validate =====

#[test]
fn validate_example_loads_without_warnings() {
    let out = run(&["validate", &example("flags.json")], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "9 flags, 0 warnings\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_rejected_file_prints_the_error_with_its_json_path() {
    let file = TempPath::with(REJECTED_FILE);
    let out = run(&["validate", file.as_str()], "");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, format!("error: {REJECTED_ERROR}\nrejected\n"));
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_text_that_is_not_json_gives_line_and_column() {
    let file = TempPath::with("{\"flags\": ");
    let out = run(&["validate", file.as_str()], "");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stdout,
        "error: not JSON: EOF while parsing a value at line 1, column 10\nrejected\n"
    );

    let file = TempPath::new();
    std::fs::write(&file.0, b"{\"flags\": {}}\xff").expect("write a temporary file");
    let out = run(&["validate", file.as_str()], "");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stdout,
        "error: not JSON: invalid UTF-8 at byte 13\nrejected\n"
    );
}

#[test]
fn validate_warnings_are_listed_and_the_file_still_loads() {
    let file = TempPath::with(WARNING_FILE);
    let out = run(&["validate", file.as_str()], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("warning: {WARNING}\n2 flags, 1 warning\n")
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_unreadable_file_is_exit_2() {
    let missing = TempPath::new();
    let out = run(&["validate", missing.as_str()], "");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    let prefix = format!("acqrel-flags: cannot read {}: ", missing.as_str());
    assert!(out.stderr.starts_with(&prefix), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

// ===== eval: streams =====

#[test]
fn eval_example_requests_give_every_reason() {
    let requests = std::fs::read_to_string(example("requests.jsonl")).expect("read requests.jsonl");
    let out = run(&["eval", "--flags", &example("flags.json")], &requests);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let support = json!({"flagSetId": "shop-web", "team": "web", "owner": "support"});
    let checkout = json!({"flagSetId": "shop-web", "team": "checkout", "owner": "payments"});
    let expected = [
        dark_mode_result(),
        resolved(
            "legacy-search",
            json!(false),
            None,
            "DISABLED",
            shop_metadata(),
        ),
        resolved(
            "support-channel",
            json!("phone"),
            Some("phone"),
            "TARGETING_MATCH",
            support.clone(),
        ),
        resolved(
            "support-channel",
            json!("email"),
            Some("email"),
            "DEFAULT",
            support,
        ),
        // MurmurHash3("new-checkout" + key): user-8 lands in bucket 18 of
        // 100 (on: 0..20), user-1 in bucket 45 (off).
        resolved(
            "new-checkout",
            json!(true),
            Some("on"),
            "TARGETING_MATCH",
            checkout.clone(),
        ),
        resolved(
            "new-checkout",
            json!(false),
            Some("off"),
            "TARGETING_MATCH",
            checkout,
        ),
        resolved(
            "search-v2",
            json!(true),
            Some("on"),
            "TARGETING_MATCH",
            shop_metadata(),
        ),
        resolved(
            "search-v2",
            json!(false),
            Some("off"),
            "TARGETING_MATCH",
            shop_metadata(),
        ),
        resolved(
            "staff-tools",
            json!(true),
            Some("on"),
            "TARGETING_MATCH",
            shop_metadata(),
        ),
        resolved(
            "max-cart-items",
            json!(100),
            Some("extended"),
            "TARGETING_MATCH",
            shop_metadata(),
        ),
        resolved(
            "checkout-layout",
            json!({"steps": 3, "expressPay": false}),
            Some("classic"),
            "STATIC",
            shop_metadata(),
        ),
        resolved(
            "discount-rate",
            json!(0.15),
            Some("spring"),
            "STATIC",
            shop_metadata(),
        ),
        failed(
            "no-such-flag",
            json!(true),
            "FLAG_NOT_FOUND",
            r#"no flag has the key "no-such-flag""#,
            // No flag: the flag set's metadata, as flagd returns it.
            shop_metadata(),
        ),
        failed(
            "max-cart-items",
            json!("many"),
            "TYPE_MISMATCH",
            "the flag is of type integer, asked as string",
            shop_metadata(),
        ),
    ];
    assert_eq!(out.json_lines(), expected);
}

#[test]
fn eval_malformed_line_mid_stream_does_not_stop_it() {
    // Line 2 is not JSON, line 3 is blank (skipped, but counted), line 4
    // ends in CRLF, line 5 asks an integer with a float default.
    let input = [
        DARK_MODE_REQUEST,
        "nope",
        "",
        &format!("{DARK_MODE_REQUEST}\r"),
        r#"{"flag": "max-cart-items", "type": "integer", "default": 1.5}"#,
        DARK_MODE_REQUEST,
    ]
    .join("\n");
    let out = run(&["eval", "--flags", &example("flags.json")], &input);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.json_lines(),
        [
            dark_mode_result(),
            malformed(2, "not JSON: expected ident at line 1 column 2"),
            dark_mode_result(),
            malformed(
                5,
                r#""default": expected a 64-bit integer, found the number 1.5"#
            ),
            dark_mode_result(),
        ]
    );
}

#[test]
fn eval_names_what_is_wrong_with_each_malformed_request() {
    let cases: [(&[u8], &str); 17] = [
        (b"[1, 2]", "expected a request object, found an array"),
        (br#""dark-mode""#, r#"expected a request object, found the string "dark-mode""#),
        (br#"{"type": "boolean", "default": true}"#, r#"missing member "flag" (a string)"#),
        (br#"{"flag": 7, "type": "boolean", "default": true}"#, r#""flag": expected a string, found the number 7"#),
        (
            br#"{"flag": "f", "default": true}"#,
            r#"missing member "type" (one of boolean, string, integer, float or object)"#,
        ),
        (
            br#"{"flag": "f", "type": null, "default": true}"#,
            r#""type": expected one of boolean, string, integer, float or object, found null"#,
        ),
        (
            br#"{"flag": "f", "type": "bool", "default": true}"#,
            r#""type": expected one of boolean, string, integer, float or object, found "bool""#,
        ),
        (br#"{"flag": "f", "type": "boolean"}"#, r#"missing member "default" (a boolean)"#),
        (
            br#"{"flag": "f", "type": "boolean", "default": "yes"}"#,
            r#""default": expected a boolean, found the string "yes""#,
        ),
        (br#"{"flag": "f", "type": "string", "default": 1}"#, r#""default": expected a string, found the number 1"#),
        (
            br#"{"flag": "f", "type": "integer", "default": 9223372036854775808}"#,
            r#""default": expected a 64-bit integer, found the number 9223372036854775808"#,
        ),
        (br#"{"flag": "f", "type": "float", "default": "0.5"}"#, r#""default": expected a number, found the string "0.5""#),
        (br#"{"flag": "f", "type": "object", "default": []}"#, r#""default": expected an object, found an array"#),
        (
            br#"{"flag": "f", "type": "boolean", "default": true, "context": "u1"}"#,
            r#""context": expected an object, found the string "u1""#,
        ),
        (
            br#"{"flag": "f", "type": "boolean", "default": true, "context": {"targetingKey": 42}}"#,
            r#""context": "targetingKey": expected a string, found the number 42"#,
        ),
        (
            br#"{"flag": "f", "type": "boolean", "default": true, "contxt": {}}"#,
            r#"unknown member "contxt": a request has "flag", "type", "default" and "context""#,
        ),
        (b"{\"flag\": \"\xff\"}", "not UTF-8 (at byte 10)"),
    ];
    let mut input = Vec::new();
    for (request, _) in &cases {
        input.extend_from_slice(request);
        input.push(b'\n');
    }
    let out = run_bytes(&["eval", "--flags", &example("flags.json")], &input);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr, "");
    let expected: Vec<Json> = (1..)
        .zip(cases)
        .map(|(line, (_, error))| malformed(line, error))
        .collect();
    assert_eq!(out.json_lines(), expected);
}

#[test]
fn eval_integer_default_for_a_float_flag_but_not_the_reverse() {
    let input = [
        r#"{"flag": "discount-rate", "type": "float", "default": 1}"#,
        r#"{"flag": "discount-rate", "type": "integer", "default": 1}"#,
        r#"{"flag": "max-cart-items", "type": "float", "default": 1e3}"#,
    ]
    .join("\n");
    let out = run(&["eval", "--flags", &example("flags.json")], &input);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.json_lines(),
        [
            resolved(
                "discount-rate",
                json!(0.15),
                Some("spring"),
                "STATIC",
                shop_metadata()
            ),
            failed(
                "discount-rate",
                json!(1),
                "TYPE_MISMATCH",
                "the flag is of type float, asked as integer",
                shop_metadata(),
            ),
            // An integer flag asked as float: its value converted (20.0),
            // the default variant since no context matches.
            resolved(
                "max-cart-items",
                json!(20.0),
                Some("standard"),
                "DEFAULT",
                shop_metadata()
            ),
        ]
    );
}

#[test]
fn eval_reports_load_warnings_on_stderr_and_parse_error_per_request() {
    let file = TempPath::with(WARNING_FILE);
    let input = r#"{"flag": "g", "type": "boolean", "default": false}"#;
    let out = run(&["eval", "--flags", file.as_str()], input);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, format!("acqrel-flags: warning: {WARNING}\n"));
    assert_eq!(
        out.json_lines(),
        [failed(
            "g",
            json!(false),
            "PARSE_ERROR",
            r#"unknown $ref "nope": $evaluators has no such entry"#,
            json!({}),
        )]
    );
}

#[test]
fn eval_with_a_rejected_or_missing_flag_file_is_exit_2() {
    let file = TempPath::with(REJECTED_FILE);
    let out = run(&["eval", "--flags", file.as_str()], DARK_MODE_REQUEST);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "acqrel-flags: {} is rejected: {REJECTED_ERROR}\n",
            file.as_str()
        )
    );

    let missing = TempPath::new();
    let out = run(&["eval", "--flags", missing.as_str()], DARK_MODE_REQUEST);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    let prefix = format!("acqrel-flags: cannot read {}: ", missing.as_str());
    assert!(out.stderr.starts_with(&prefix), "{out:?}");
}

/// Reads `child`'s standard output on a thread, sending each line.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

#[test]
fn eval_writes_each_result_before_reading_the_next_request() {
    let mut child = spawn(&["eval", "--flags", &example("flags.json")]);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let lines = line_reader(&mut child);
    for _ in 0..2 {
        // The input stays open: the result must arrive anyway.
        writeln!(stdin, "{DARK_MODE_REQUEST}").expect("write a request");
        stdin.flush().expect("flush the request");
        let Ok(line) = lines.recv_timeout(HANG_GUARD) else {
            let _ = child.kill();
            panic!("no result while the input is open: the output is not flushed per line");
        };
        let result: Json = serde_json::from_str(&line).expect("a JSON result line");
        assert_eq!(result, dark_mode_result());
    }
    drop(stdin);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    assert!(lines.recv_timeout(HANG_GUARD).is_err(), "no more lines");
}

#[test]
fn eval_stops_quietly_when_its_reader_closes_the_pipe() {
    let mut child = spawn(&["eval", "--flags", &example("flags.json")]);
    // Close the read end before any output: the first result's write fails
    // with a broken pipe.
    drop(child.stdout.take());
    let requests = format!("{DARK_MODE_REQUEST}\n").repeat(100);
    let writer = feed(
        child.stdin.take().expect("piped stdin"),
        requests.into_bytes(),
    );
    let out = finish(child);
    writer.join().expect("the stdin writer does not panic");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "", "no message, no panic");
}

// ===== eval: one evaluation =====

#[test]
fn eval_single_evaluation() {
    let flags = example("flags.json");
    let out = run(
        &[
            "eval",
            "--flags",
            &flags,
            "--flag",
            "support-channel",
            "--type",
            "string",
            "--default",
            "none",
            "--context",
            r#"{"email": "kim@bigcorp.com"}"#,
        ],
        "",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let support = json!({"flagSetId": "shop-web", "team": "web", "owner": "support"});
    assert_eq!(
        out.json_lines(),
        [resolved(
            "support-channel",
            json!("phone"),
            Some("phone"),
            "TARGETING_MATCH",
            support
        )]
    );

    // `--name=value`, options in any order, a value that starts with '-'.
    let out = run(
        &[
            "eval",
            "--default=-1",
            "--type=integer",
            r#"--context={"email": "ada@example.com"}"#,
            "--flag=max-cart-items",
            &format!("--flags={flags}"),
        ],
        "",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.json_lines(),
        [resolved(
            "max-cart-items",
            json!(100),
            Some("extended"),
            "TARGETING_MATCH",
            shop_metadata()
        )]
    );
}

#[test]
fn eval_single_evaluation_with_a_targeting_key_and_no_context() {
    let flags = example("flags.json");
    let checkout = json!({"flagSetId": "shop-web", "team": "checkout", "owner": "payments"});
    let args = [
        "eval",
        "--flags",
        &flags,
        "--flag",
        "new-checkout",
        "--type",
        "boolean",
        "--default",
        "true",
    ];
    let with_key = [&args[..], &["--context", r#"{"targetingKey": "user-1"}"#]].concat();
    let out = run(&with_key, "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.json_lines(),
        [resolved(
            "new-checkout",
            json!(false),
            Some("off"),
            "TARGETING_MATCH",
            checkout.clone()
        )]
    );

    // No targeting key: fractional has nothing to bucket, returns null, and
    // the flag serves its default variant.
    let out = run(&args, "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.json_lines(),
        [resolved(
            "new-checkout",
            json!(false),
            Some("off"),
            "DEFAULT",
            checkout
        )]
    );
}

#[test]
fn eval_single_evaluation_usage_errors() {
    let flags = example("flags.json");
    let one = |kind: &str, default: &str, context: Option<&str>| {
        let mut args = vec![
            "eval",
            "--flags",
            &flags,
            "--flag",
            "f",
            "--type",
            kind,
            "--default",
            default,
        ];
        args.extend(
            context
                .map(|context| ["--context", context])
                .into_iter()
                .flatten(),
        );
        run(&args, "")
    };
    one("int", "1", None).assert_usage_error(
        r#"acqrel-flags: eval: --type: expected one of boolean, string, integer, float or object, found "int""#,
    );
    one("integer", "1.5", None).assert_usage_error(
        "acqrel-flags: eval: --default: expected a 64-bit integer, found the number 1.5",
    );
    one("boolean", "maybe", None).assert_usage_error(
        "acqrel-flags: eval: --default: not JSON (expected value at line 1 column 1); for a string, use --type string",
    );
    one("object", "{}", Some("[]"))
        .assert_usage_error("acqrel-flags: eval: --context: expected an object, found an array");
    one("object", "{}", Some("{")).assert_usage_error(
        "acqrel-flags: eval: --context: not JSON (EOF while parsing an object at line 1 column 1)",
    );
    one("boolean", "true", Some(r#"{"targetingKey": null}"#)).assert_usage_error(
        r#"acqrel-flags: eval: --context: "targetingKey": expected a string, found null"#,
    );
}

// ===== usage =====

#[test]
fn usage_errors_exit_2_with_a_message_and_the_synopsis() {
    let flags = example("flags.json");
    let cases: [(&[&str], &str); 13] = [
        (&[], "missing a command: validate or eval"),
        (
            &["frob"],
            r#"unknown command "frob": expected validate or eval"#,
        ),
        (&["validate"], "validate: missing the FILE to check"),
        (
            &["validate", "a.json", "b.json"],
            r#"validate: one FILE at a time (unexpected "b.json")"#,
        ),
        (
            &["validate", "--strict", "a.json"],
            r#"validate: unknown option "--strict""#,
        ),
        (&["eval"], "eval: missing --flags FILE"),
        (&["eval", "--flags"], "eval: --flags needs a value"),
        (
            &["eval", "--flags", &flags, "--flags", &flags],
            "eval: --flags given twice",
        ),
        (
            &["eval", "--flags", &flags, "requests.jsonl"],
            r#"eval: unexpected argument "requests.jsonl""#,
        ),
        (
            &["eval", "--flags", &flags, "--verbose"],
            r#"eval: unknown option "--verbose""#,
        ),
        (
            &["eval", "--flags", &flags, "--flag", "f", "--type", "string"],
            "eval: --flag, --type and --default go together (missing --default); \
             leave them all out to read requests from standard input",
        ),
        (
            &["eval", "--flags", &flags, "--context", "{}"],
            "eval: --flag, --type and --default go together (missing --flag, --type, --default); \
             leave them all out to read requests from standard input",
        ),
        (
            &["eval", "--flags", &flags, "--flag=f", "--flag=g"],
            "eval: --flag given twice",
        ),
    ];
    for (args, message) in cases {
        run(args, DARK_MODE_REQUEST).assert_usage_error(&format!("acqrel-flags: {message}"));
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_usage_errors_or_file_names() {
    use std::os::unix::ffi::OsStrExt;

    let bad = OsStr::from_bytes(b"f\xff");
    let flags = example("flags.json");
    let args: [&OsStr; 9] = [
        "eval".as_ref(),
        "--flags".as_ref(),
        flags.as_ref(),
        "--flag".as_ref(),
        bad,
        "--type".as_ref(),
        "boolean".as_ref(),
        "--default".as_ref(),
        "true".as_ref(),
    ];
    run(&args, "").assert_usage_error("acqrel-flags: eval: --flag: not UTF-8: \"f\u{fffd}\"");

    // As a file name it is fine (and here, missing).
    let out = run(&["validate".as_ref(), bad], "");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .starts_with("acqrel-flags: cannot read f\u{fffd}: "),
        "{out:?}"
    );
}

#[test]
fn help_is_printed_on_stdout_with_exit_0() {
    let flags = example("flags.json");
    let forms: [&[&str]; 5] = [
        &["--help"],
        &["-h"],
        &["help"],
        &["validate", "--help"],
        &["eval", "--flags", &flags, "-h"],
    ];
    let first = run(forms[0], "");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(first.stderr, "");
    let mut lines = first.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("acqrel-flags: check flagd flag files and evaluate flags")
    );
    assert_eq!(lines.next(), Some(""));
    assert_eq!(lines.next(), Some("Usage:"));
    assert_eq!(lines.next(), Some("  acqrel-flags validate FILE"));
    for args in &forms[1..] {
        let out = run(args, "");
        assert_eq!(
            (out.code, &out.stdout, &out.stderr),
            (Some(0), &first.stdout, &String::new()),
            "{args:?}"
        );
    }
}
