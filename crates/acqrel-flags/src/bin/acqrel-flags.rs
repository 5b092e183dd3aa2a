//! `acqrel-flags`: check flagd flag files and evaluate flags from the
//! command line.
//!
//! - `acqrel-flags validate FILE` loads `FILE` with
//!   [`FlagSet::parse`](acqrel_flags::FlagSet::parse) and prints each error
//!   or warning with its JSON path, then a summary.
//! - `acqrel-flags eval --flags FILE` reads evaluation requests, one JSON
//!   object per line, on standard input and writes one JSON result per
//!   line, flushed as it is produced; a malformed request gets an error
//!   line and the stream goes on.
//! - `acqrel-flags eval --flags FILE --flag KEY --type TYPE --default VALUE
//!   [--context JSON]` evaluates once.
//!
//! [`DETAILS`] describes all of it (`--help` prints it). The binary never
//! panics, whatever its arguments and input: every failure is a message and
//! an exit status, and a standard output closed by its reader (`| head`)
//! ends it quietly.

use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use acqrel_flags::{
    EvaluationContext, FlagSet, FlagStore, Flags, LoadWarning, Resolution, Value, ValueKind,
};
use serde_json::{Map, Value as Json};

/// The forms of the command, printed by `--help` and after a usage error.
const SYNOPSIS: &str = "\
Usage:
  acqrel-flags validate FILE
  acqrel-flags eval --flags FILE
  acqrel-flags eval --flags FILE --flag KEY --type TYPE --default VALUE [--context JSON]
  acqrel-flags --help";

/// What `--help` prints after the synopsis.
const DETAILS: &str = r#"
validate FILE
  Loads FILE (flagd's JSON flag-definition format) and prints every error or
  warning with its JSON path, one per line, then a summary: "N flags,
  W warnings" if the file loads, "rejected" if it does not. A warning is a
  flag that loads but whose targeting cannot be compiled: it resolves with
  PARSE_ERROR.

eval --flags FILE
  Reads evaluation requests on standard input, one JSON object per line:
    {"flag": KEY, "type": TYPE, "default": VALUE, "context": {...}}
  ("context" is optional; its "targetingKey" string is the targeting key),
  and writes one result per line as each is evaluated:
    {"flag": KEY, "value": ..., "variant": NAME or null, "reason": REASON,
     "errorCode": CODE or null, "errorMessage": TEXT (with an error only),
     "metadata": {...}}
  REASON is STATIC, TARGETING_MATCH, DEFAULT, DISABLED or ERROR; CODE is
  FLAG_NOT_FOUND, TYPE_MISMATCH, PARSE_ERROR or GENERAL. A line that is not
  a well-formed request gets {"line": N, "error": TEXT} (N counts from 1)
  and the stream goes on. Blank lines are skipped. Warnings about the flag
  file go to standard error.

eval --flags FILE --flag KEY --type TYPE --default VALUE [--context JSON]
  Evaluates one flag and writes one result line, as above.

Options of eval (each takes its value as the next argument or after "="):
  --flags FILE      the flag file
  --flag KEY        the flag to evaluate
  --type TYPE       boolean, string, integer, float or object
  --default VALUE   the caller's default, served when the flag cannot be:
                    JSON (true, 3, 0.5, {"a": 1}), or for --type string the
                    text itself (an integer will do for --type float)
  --context JSON    the evaluation context, a JSON object

Exit status:
  0  validate: the file loads, with or without warnings;
     eval: every request was well-formed (whatever it resolved to)
  1  validate: the file is rejected; eval: some request was malformed
  2  a usage error, or a flag file that cannot be read (for eval: or
     is rejected)"#;

/// The names `--type` and a request's `"type"` accept.
const TYPE_NAMES: &str = "boolean, string, integer, float or object";

/// The members a request may have.
const REQUEST_MEMBERS: [&str; 4] = ["flag", "type", "default", "context"];

fn main() -> ExitCode {
    let status = match Command::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            let help = format!(
                "acqrel-flags: check flagd flag files and evaluate flags\n\n{SYNOPSIS}\n{DETAILS}"
            );
            finish_output(write_line(&mut io::stdout().lock(), &help), Exit::Success)
        }
        Ok(Command::Validate { file }) => validate(&file),
        Ok(Command::EvalStream { flags }) => eval_stream(&flags),
        Ok(Command::EvalOne { flags, request }) => eval_one(&flags, request),
        Err(message) => {
            complain(&format!(
                "{message}\n\n{SYNOPSIS}\n\nRun `acqrel-flags --help` for details."
            ));
            Exit::Trouble
        }
    };
    ExitCode::from(status as u8)
}

// ===== exit status and output =====

/// The process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// 0: the file loads; every request was well-formed.
    Success = 0,
    /// 1: the file is rejected; some request was malformed.
    Failure = 1,
    /// 2: a usage error, or a flag file that cannot be read or loaded.
    Trouble = 2,
}

/// Writes `message` to standard error after the program's name. A standard
/// error that cannot be written is ignored: there is nowhere left to say
/// so.
fn complain(message: &str) {
    let _ = writeln!(io::stderr().lock(), "acqrel-flags: {message}");
}

/// Writes `line` and a newline, then flushes, so that a reader on a pipe
/// sees the line now rather than when a buffer fills.
fn write_line(out: &mut impl Write, line: &str) -> io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The exit status after writing output: `status` if the write succeeded
/// or if standard output was closed by its reader (a broken pipe, as when
/// the output goes to `head`: the reader has all it wants, so nothing is
/// said), and [`Exit::Trouble`] with a message for any other write error.
fn finish_output(written: io::Result<()>, status: Exit) -> Exit {
    match written {
        Ok(()) => status,
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => status,
        Err(err) => {
            complain(&format!("cannot write to standard output: {err}"));
            Exit::Trouble
        }
    }
}

// ===== arguments =====

/// What the arguments ask for.
#[derive(Debug)]
enum Command {
    /// `--help`, `-h` or `help` in place of the command, or `--help` or `-h`
    /// among a command's arguments.
    Help,
    /// `validate FILE`.
    Validate { file: PathBuf },
    /// `eval --flags FILE`: requests on standard input.
    EvalStream { flags: PathBuf },
    /// `eval --flags FILE --flag KEY --type TYPE --default VALUE [--context JSON]`.
    EvalOne { flags: PathBuf, request: Request },
}

impl Command {
    /// Parses the arguments (without the program's name). The error is the
    /// message for a usage error.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
        let mut args = args.into_iter();
        let Some(command) = args.next() else {
            return Err("missing a command: validate or eval".to_owned());
        };
        match command.to_str() {
            Some("-h" | "--help" | "help") => Ok(Command::Help),
            Some("validate") => Command::parse_validate(args),
            Some("eval") => Command::parse_eval(args),
            _ => Err(format!(
                "unknown command {}: expected validate or eval",
                quoted(&command)
            )),
        }
    }

    /// `validate`'s arguments: one file (after `--`, it may start with `-`).
    fn parse_validate(args: impl Iterator<Item = OsString>) -> Result<Command, String> {
        let mut file = None;
        let mut options_done = false;
        for arg in args {
            // A non-UTF-8 argument can only be a file name.
            let text = arg.to_str().unwrap_or("");
            if !options_done && text.starts_with('-') && text != "-" {
                match text {
                    "-h" | "--help" => return Ok(Command::Help),
                    "--" => options_done = true,
                    _ => return Err(format!("validate: unknown option {}", quoted(&arg))),
                }
            } else if file.is_some() {
                return Err(format!(
                    "validate: one FILE at a time (unexpected {})",
                    quoted(&arg)
                ));
            } else {
                file = Some(PathBuf::from(arg));
            }
        }
        let file = file.ok_or("validate: missing the FILE to check")?;
        Ok(Command::Validate { file })
    }

    /// `eval`'s options, in any order, each at most once.
    fn parse_eval(mut args: impl Iterator<Item = OsString>) -> Result<Command, String> {
        let mut options = EvalOptions::default();
        while let Some(arg) = args.next() {
            let Some(text) = arg.to_str() else {
                return Err(format!("eval: unexpected argument {}", quoted(&arg)));
            };
            if matches!(text, "-h" | "--help") {
                return Ok(Command::Help);
            }
            let (name, inline) = match text.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name, Some(OsString::from(value)))
                }
                _ => (text, None),
            };
            let Some(slot) = options.slot(name) else {
                let what = if name.starts_with('-') {
                    "unknown option"
                } else {
                    "unexpected argument"
                };
                return Err(format!("eval: {what} {}", quoted(&arg)));
            };
            if slot.is_some() {
                return Err(format!("eval: {name} given twice"));
            }
            let value = inline.or_else(|| args.next());
            *slot = Some(value.ok_or_else(|| format!("eval: {name} needs a value"))?);
        }
        options.into_command()
    }
}

/// The options of `eval`, as given.
#[derive(Debug, Default)]
struct EvalOptions {
    flags: Option<OsString>,
    flag: Option<OsString>,
    kind: Option<OsString>,
    default: Option<OsString>,
    context: Option<OsString>,
}

impl EvalOptions {
    /// Where the value of the option `name` goes, if `eval` has the option.
    fn slot(&mut self, name: &str) -> Option<&mut Option<OsString>> {
        match name {
            "--flags" => Some(&mut self.flags),
            "--flag" => Some(&mut self.flag),
            "--type" => Some(&mut self.kind),
            "--default" => Some(&mut self.default),
            "--context" => Some(&mut self.context),
            _ => None,
        }
    }

    /// Checks that the options make one of `eval`'s two forms: `--flags`
    /// alone, or with `--flag`, `--type` and `--default` (and perhaps
    /// `--context`).
    fn into_command(self) -> Result<Command, String> {
        let flags = PathBuf::from(self.flags.ok_or("eval: missing --flags FILE")?);
        match (self.flag, self.kind, self.default, self.context) {
            (None, None, None, None) => Ok(Command::EvalStream { flags }),
            (Some(flag), Some(kind), Some(default), context) => {
                let request = Request::from_args(flag, kind, default, context)?;
                Ok(Command::EvalOne { flags, request })
            }
            (flag, kind, default, _) => {
                let missing: Vec<&str> =
                    [("--flag", flag), ("--type", kind), ("--default", default)]
                        .into_iter()
                        .filter(|(_, given)| given.is_none())
                        .map(|(name, _)| name)
                        .collect();
                Err(format!(
                    "eval: --flag, --type and --default go together (missing {}); \
                     leave them all out to read requests from standard input",
                    missing.join(", ")
                ))
            }
        }
    }
}

/// An option's value as text.
fn option_text(name: &str, value: OsString) -> Result<String, String> {
    value
        .into_string()
        .map_err(|value| format!("eval: {name}: not UTF-8: {}", quoted(&value)))
}

/// `arg` as a JSON string, for messages (bytes that are not UTF-8 show as
/// U+FFFD).
fn quoted(arg: &OsString) -> Json {
    Json::String(arg.to_string_lossy().into_owned())
}

// ===== requests =====

/// One evaluation: a flag, the caller's default (its type is the type
/// asked for) and the context.
#[derive(Debug)]
struct Request {
    flag: String,
    default: Value,
    context: EvaluationContext,
}

impl Request {
    /// A request line of `eval`'s input (without its line break). The error
    /// says what is wrong with it, naming the member.
    fn from_line(line: &[u8]) -> Result<Request, String> {
        let text = std::str::from_utf8(line)
            .map_err(|err| format!("not UTF-8 (at byte {})", err.valid_up_to()))?;
        let json: Json = serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
        let mut members = match json {
            Json::Object(members) => members,
            other => {
                return Err(format!(
                    "expected a request object, found {}",
                    describe(&other)
                ));
            }
        };
        if let Some(name) = members
            .keys()
            .find(|name| !REQUEST_MEMBERS.contains(&name.as_str()))
        {
            return Err(format!(
                "unknown member {}: a request has \"flag\", \"type\", \"default\" and \"context\"",
                Json::from(name.as_str())
            ));
        }
        let flag = match members.remove("flag") {
            Some(Json::String(flag)) => flag,
            other => return Err(member_error("flag", "a string", other.as_ref())),
        };
        let kind = match members.remove("type") {
            Some(Json::String(name)) => {
                kind_named(&name).map_err(|err| format!("\"type\": {err}"))?
            }
            other => {
                return Err(member_error(
                    "type",
                    &format!("one of {TYPE_NAMES}"),
                    other.as_ref(),
                ));
            }
        };
        let default = match members.remove("default") {
            Some(json) => typed_default(kind, json).map_err(|err| format!("\"default\": {err}"))?,
            None => return Err(member_error("default", expected_of(kind), None)),
        };
        let context =
            context_from(members.remove("context")).map_err(|err| format!("\"context\": {err}"))?;
        Ok(Request {
            flag,
            default,
            context,
        })
    }

    /// The request of `eval --flag KEY --type TYPE --default VALUE
    /// [--context JSON]`. The error is a usage error naming the option.
    fn from_args(
        flag: OsString,
        kind: OsString,
        default: OsString,
        context: Option<OsString>,
    ) -> Result<Request, String> {
        let flag = option_text("--flag", flag)?;
        let kind = kind_named(&option_text("--type", kind)?)
            .map_err(|err| format!("eval: --type: {err}"))?;
        let default = option_text("--default", default)?;
        let default = if kind == ValueKind::String {
            Json::String(default)
        } else {
            serde_json::from_str(&default).map_err(|err| {
                format!("eval: --default: not JSON ({err}); for a string, use --type string")
            })?
        };
        let default =
            typed_default(kind, default).map_err(|err| format!("eval: --default: {err}"))?;
        let context = match context {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&option_text("--context", text)?)
                    .map_err(|err| format!("eval: --context: not JSON ({err})"))?,
            ),
        };
        let context = context_from(context).map_err(|err| format!("eval: --context: {err}"))?;
        Ok(Request {
            flag,
            default,
            context,
        })
    }

    /// Evaluates the request and gives the result line.
    fn evaluate(self, flags: &Flags) -> String {
        let resolution = flags.resolve_value(&self.flag, self.default, &self.context);
        result_line(&self.flag, resolution)
    }
}

/// The type named `name` (`"boolean"`, `"string"`, `"integer"`, `"float"`
/// or `"object"`).
fn kind_named(name: &str) -> Result<ValueKind, String> {
    ValueKind::from_name(name)
        .ok_or_else(|| format!("expected one of {TYPE_NAMES}, found {}", Json::from(name)))
}

/// What a value of type `kind` is called in messages.
fn expected_of(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Bool => "a boolean",
        ValueKind::String => "a string",
        ValueKind::Int => "a 64-bit integer",
        ValueKind::Float => "a number",
        ValueKind::Object => "an object",
    }
}

/// The caller's default as a [`Value`] of type `kind`. An integer is a
/// good default for a float (it is converted); a number written with a
/// fraction or an exponent is not an integer.
fn typed_default(kind: ValueKind, json: Json) -> Result<Value, String> {
    let mismatch =
        |found: &Json| format!("expected {}, found {}", expected_of(kind), describe(found));
    match (kind, json) {
        (ValueKind::Bool, Json::Bool(b)) => Ok(Value::Bool(b)),
        (ValueKind::String, Json::String(s)) => Ok(Value::String(s)),
        (ValueKind::Object, Json::Object(map)) => Ok(Value::Object(map)),
        (ValueKind::Int, Json::Number(n)) => n
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| mismatch(&Json::Number(n))),
        (ValueKind::Float, Json::Number(n)) => n
            .as_f64()
            .map(Value::Float)
            .ok_or_else(|| mismatch(&Json::Number(n))),
        (_, other) => Err(mismatch(&other)),
    }
}

/// The evaluation context: none, or a JSON object whose `"targetingKey"`,
/// if present, is a string.
fn context_from(json: Option<Json>) -> Result<EvaluationContext, String> {
    match json {
        None => Ok(EvaluationContext::new()),
        Some(Json::Object(members)) => match members.get("targetingKey") {
            None | Some(Json::String(_)) => Ok(EvaluationContext::from_json(members)),
            Some(other) => Err(format!(
                "\"targetingKey\": expected a string, found {}",
                describe(other)
            )),
        },
        Some(other) => Err(format!("expected an object, found {}", describe(&other))),
    }
}

/// The message for a request member that is missing or of the wrong type.
fn member_error(name: &str, expected: &str, found: Option<&Json>) -> String {
    match found {
        None => format!("missing member \"{name}\" ({expected})"),
        Some(found) => format!("\"{name}\": expected {expected}, found {}", describe(found)),
    }
}

/// A JSON value described for a message: `the string "x"`, `an array`.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(_) => format!("the string {json}"),
        Json::Array(_) => "an array".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    }
}

// ===== results =====

/// A result line: `flag`, `value`, `variant`, `reason`, `errorCode`,
/// `errorMessage` (only when there is one) and `metadata`, in that order.
fn result_line(flag: &str, resolution: Resolution<Value>) -> String {
    let mut line = format!(
        r#"{{"flag":{},"value":{},"variant":{},"reason":{},"errorCode":{}"#,
        Json::from(flag),
        Json::from(resolution.value),
        resolution.variant.map_or(Json::Null, Json::String),
        Json::from(resolution.reason.as_str()),
        resolution
            .error_code
            .map_or(Json::Null, |code| Json::from(code.as_str())),
    );
    if let Some(message) = resolution.error_message {
        line.push_str(&format!(r#","errorMessage":{}"#, Json::String(message)));
    }
    let metadata = Json::Object(Map::clone(&resolution.metadata));
    line.push_str(&format!(r#","metadata":{metadata}}}"#));
    line
}

/// The line for a malformed request on input line `number`.
fn error_line(number: u64, error: String) -> String {
    format!(r#"{{"line":{number},"error":{}}}"#, Json::String(error))
}

// ===== commands =====

/// Reads and parses a flag file. `None` if it cannot be read (said on
/// standard error); otherwise the flags and warnings, or why the file is
/// rejected. A file that is not UTF-8 is not JSON, so it is rejected.
fn load(path: &Path) -> Option<Result<(FlagSet, Vec<LoadWarning>), String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            complain(&format!("cannot read {}: {err}", path.display()));
            return None;
        }
    };
    Some(match std::str::from_utf8(&bytes) {
        Ok(text) => FlagSet::parse(text).map_err(|err| err.to_string()),
        Err(err) => Err(format!(
            "not JSON: invalid UTF-8 at byte {}",
            err.valid_up_to()
        )),
    })
}

/// `validate FILE`.
fn validate(path: &Path) -> Exit {
    let Some(loaded) = load(path) else {
        return Exit::Trouble;
    };
    let (report, status) = match loaded {
        Ok((flags, warnings)) => {
            let mut report: String = warnings
                .iter()
                .map(|warning| format!("warning: {warning}\n"))
                .collect();
            report.push_str(&format!(
                "{}, {}",
                counted(flags.len(), "flag"),
                counted(warnings.len(), "warning")
            ));
            (report, Exit::Success)
        }
        Err(error) => (format!("error: {error}\nrejected"), Exit::Failure),
    };
    finish_output(write_line(&mut io::stdout().lock(), &report), status)
}

/// `3 flags`, `1 warning`.
fn counted(n: usize, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{plural}")
}

/// Loads the flag file for `eval`: `None` if it cannot be read or is
/// rejected (said on standard error). Warnings go to standard error.
fn load_for_eval(path: &Path) -> Option<Flags> {
    match load(path)? {
        Ok((flags, warnings)) => {
            for warning in &warnings {
                complain(&format!("warning: {warning}"));
            }
            Some(FlagStore::from_set(flags).snapshot())
        }
        Err(error) => {
            complain(&format!("{} is rejected: {error}", path.display()));
            None
        }
    }
}

/// `eval --flags FILE`: a result or error line per request line.
fn eval_stream(path: &Path) -> Exit {
    let Some(flags) = load_for_eval(path) else {
        return Exit::Trouble;
    };
    let mut input = io::stdin().lock();
    let mut out = io::stdout().lock();
    let mut status = Exit::Success;
    let mut line = Vec::new();
    let mut number = 0_u64;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return status,
            Ok(_) => number += 1,
            Err(err) => {
                complain(&format!("cannot read standard input: {err}"));
                return Exit::Trouble;
            }
        }
        let request = line.strip_suffix(b"\n").unwrap_or(&line);
        let request = request.strip_suffix(b"\r").unwrap_or(request);
        if request.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let output = match Request::from_line(request) {
            Ok(request) => request.evaluate(&flags),
            Err(error) => {
                status = Exit::Failure;
                error_line(number, error)
            }
        };
        if let Err(err) = write_line(&mut out, &output) {
            return finish_output(Err(err), status);
        }
    }
}

/// `eval --flags FILE --flag KEY ...`: one result line.
fn eval_one(path: &Path, request: Request) -> Exit {
    let Some(flags) = load_for_eval(path) else {
        return Exit::Trouble;
    };
    let output = request.evaluate(&flags);
    finish_output(write_line(&mut io::stdout().lock(), &output), Exit::Success)
}
