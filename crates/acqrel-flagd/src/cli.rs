//! The command line: flagd's `start` command and its flags, parsed into
//! [`Options`] with a typed [`UsageError`] for every mistake.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

/// What `acqrel-flagd start` runs with: the flag files, where to listen and
/// the limits. [`Options::new`] gives flagd's defaults for one file.
///
/// # Examples
///
/// ```
/// use acqrel_flagd::{Command, Options};
///
/// let command = Options::parse(["start", "--uri", "file:flags.json", "--ofrep-port", "0"]).unwrap();
/// let Command::Start(options) = command else { panic!() };
/// assert_eq!(options.files, [std::path::PathBuf::from("flags.json")]);
/// assert_eq!(options.ofrep_port, 0);
/// assert_eq!(options.management_port, 8014);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The flag files, in `--uri` order: a key defined in several is taken
    /// from the last of them (flagd's merge rule).
    pub files: Vec<PathBuf>,
    /// The address every port binds to (`--bind`, 127.0.0.1 by default).
    pub bind: IpAddr,
    /// OFREP over HTTP (`--ofrep-port`, 8016); 0 picks a free port.
    pub ofrep_port: u16,
    /// `/healthz`, `/readyz` and `/metrics` (`--management-port`, 8014).
    pub management_port: u16,
    /// flagd's gRPC evaluation service, `flagd.evaluation.v1.Service` and
    /// `v2` (`--port`, 8013); 0 picks a free port.
    pub port: u16,
    /// flagd's gRPC sync service, `flagd.sync.v1.FlagSyncService`
    /// (`--sync-port`, 8015); 0 picks a free port.
    pub sync_port: u16,
    /// Requests per second allowed to each client address on the OFREP
    /// port (`--rate-limit N/s`); `None`: no limit.
    pub rate_limit: Option<NonZeroU32>,
    /// How long in-flight requests get to finish after SIGTERM or SIGINT
    /// (`--shutdown-grace`, 5 s).
    pub shutdown_grace: Duration,
    /// How often an idle change stream gets a keep-alive comment
    /// (`--sse-keep-alive`, 15 s).
    pub sse_keep_alive: Duration,
    /// Change streams open at once; more are refused with 503
    /// (`--max-sse-streams`, 10,000).
    pub max_sse_streams: NonZeroUsize,
    /// Connections open at once on each port; the rest wait in the
    /// listen backlog (`--max-connections`, 16,384).
    pub max_connections: NonZeroUsize,
    /// The largest request body accepted; larger get 413
    /// (`--max-body`, 1 MiB).
    pub max_body: usize,
    /// Quiet time after a flag file's last change before it is re-read
    /// (`--debounce-ms`, 100 ms).
    pub debounce: Duration,
}

impl Options {
    /// flagd's defaults, serving `files`.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = acqrel_flagd::Options::new(vec!["flags.json".into()]);
    /// assert_eq!((options.ofrep_port, options.port, options.sync_port), (8016, 8013, 8015));
    /// ```
    pub fn new(files: Vec<PathBuf>) -> Options {
        Options {
            files,
            bind: IpAddr::from([127, 0, 0, 1]),
            ofrep_port: 8016,
            management_port: 8014,
            port: 8013,
            sync_port: 8015,
            rate_limit: None,
            shutdown_grace: Duration::from_secs(5),
            sse_keep_alive: Duration::from_secs(15),
            max_sse_streams: NonZeroUsize::new(10_000).expect("non-zero"),
            max_connections: NonZeroUsize::new(16_384).expect("non-zero"),
            max_body: 1 << 20,
            debounce: Duration::from_millis(100),
        }
    }

    /// Parses the arguments after the program's name.
    ///
    /// # Errors
    ///
    /// A [`UsageError`] naming the argument at fault: an unknown command or
    /// flag, a flag without its value, a value that does not parse, a URI
    /// that is not `file:PATH`, or `start` without any `--uri`.
    ///
    /// # Examples
    ///
    /// ```
    /// use acqrel_flagd::{Command, Options};
    ///
    /// let err = Options::parse(["start", "--uri", "http://flags.example/flags.json"]).unwrap_err();
    /// assert!(err.to_string().contains("file:"));
    /// assert_eq!(Options::parse(["--version"]).unwrap(), Command::Version);
    /// ```
    pub fn parse<I, S>(args: I) -> Result<Command, UsageError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut args = args.into_iter();
        let Some(command) = args.next() else {
            return Err(UsageError::NoCommand);
        };
        match command.to_str() {
            Some("start") => {}
            Some("--help" | "-h" | "help") => return Ok(Command::Help),
            Some("--version" | "-V" | "version") => return Ok(Command::Version),
            _ => return Err(UsageError::UnknownCommand(lossy(&command))),
        }
        let mut options = Options::new(Vec::new());
        while let Some(arg) = args.next() {
            let text = arg
                .to_str()
                .ok_or_else(|| UsageError::UnknownFlag(lossy(&arg)))?;
            if matches!(text, "--help" | "-h") {
                return Ok(Command::Help);
            }
            // `--flag=value` or `--flag value`.
            let (name, inline) = match text.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_owned(), Some(OsString::from(value)))
                }
                _ => (text.to_owned(), None),
            };
            let mut value = || -> Result<OsString, UsageError> {
                match inline.clone() {
                    Some(value) => Ok(value),
                    None => args
                        .next()
                        .ok_or_else(|| UsageError::MissingValue(name.clone())),
                }
            };
            match name.as_str() {
                // flagd's `--uri` is a list: `-f file:a.json,file:b.json`
                // is two files, as repeating the flag is.
                "--uri" | "-f" => {
                    let value = value()?;
                    let text = value
                        .to_str()
                        .ok_or_else(|| invalid("--uri", &lossy(&value), "not UTF-8"))?;
                    for uri in text.split(',') {
                        options.files.push(file_uri(&OsString::from(uri))?);
                    }
                }
                "--bind" => options.bind = parse_value(&name, &value()?)?,
                "--ofrep-port" | "-r" => options.ofrep_port = parse_value(&name, &value()?)?,
                "--management-port" | "-m" => {
                    options.management_port = parse_value(&name, &value()?)?;
                }
                "--port" | "-p" => options.port = parse_value(&name, &value()?)?,
                "--sync-port" | "-g" => options.sync_port = parse_value(&name, &value()?)?,
                "--rate-limit" => options.rate_limit = Some(rate(&name, &value()?)?),
                "--shutdown-grace" => options.shutdown_grace = seconds(&name, &value()?)?,
                "--sse-keep-alive" => {
                    options.sse_keep_alive = seconds(&name, &value()?)?;
                    if options.sse_keep_alive.is_zero() {
                        return Err(invalid(&name, "0", "must be more than 0 seconds"));
                    }
                }
                "--max-sse-streams" => options.max_sse_streams = parse_value(&name, &value()?)?,
                "--max-connections" => options.max_connections = parse_value(&name, &value()?)?,
                "--max-body" => options.max_body = parse_value(&name, &value()?)?,
                "--debounce-ms" => {
                    options.debounce = Duration::from_millis(parse_value(&name, &value()?)?);
                }
                _ => return Err(UsageError::UnknownFlag(name)),
            }
        }
        if options.files.is_empty() {
            return Err(UsageError::NoUri);
        }
        Ok(Command::Start(options))
    }
}

/// What the command line asks for.
///
/// # Examples
///
/// ```
/// use acqrel_flagd::{Command, Options};
/// assert_eq!(Options::parse(["--help"]).unwrap(), Command::Help);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `start`: run the server.
    Start(Options),
    /// `--help`: print the usage.
    Help,
    /// `--version`: print the version.
    Version,
}

/// A mistake on the command line (the binary prints it with the usage and
/// exits with status 2).
///
/// # Examples
///
/// ```
/// use acqrel_flagd::{Options, UsageError};
/// assert!(matches!(Options::parse(["start"]), Err(UsageError::NoUri)));
/// assert!(matches!(Options::parse(["start", "--port"]), Err(UsageError::MissingValue(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No command was given.
    #[error("no command given (did you mean `start`?)")]
    NoCommand,
    /// The command is not one of `start`, `--help`, `--version`.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// A flag this command does not have.
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    /// A flag given without its value.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A flag's value does not parse.
    #[error("invalid value {value:?} for {flag}: {reason}")]
    InvalidValue {
        /// The flag.
        flag: String,
        /// Its value, as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `start` without any `--uri`.
    #[error("start needs at least one --uri file:PATH")]
    NoUri,
}

/// The usage text `--help` prints.
pub const USAGE: &str = "\
Usage:
  acqrel-flagd start --uri file:PATH [--uri file:PATH ...] [OPTIONS]
  acqrel-flagd --help
  acqrel-flagd --version

Serves the flags of the flagd flag files PATH over OFREP (HTTP) and flagd's
gRPC evaluation and sync services, reloading each file when it changes.
Several files merge: a flag key defined in more than one is taken from the
last --uri that defines it (flagd's rule).

Options of start (each takes its value as the next argument or after \"=\"):
  -f, --uri file:PATH        a flag file (repeatable, or comma-separated; only file: URIs)
      --bind ADDR            the address every port binds to [127.0.0.1]
  -r, --ofrep-port N         OFREP over HTTP [8016]; 0 picks a free port
  -m, --management-port N    /healthz, /readyz, /metrics [8014]
  -p, --port N               flagd's gRPC evaluation service [8013]
  -g, --sync-port N          flagd's gRPC sync service [8015]
      --rate-limit N/s       requests per second per client address (OFREP and gRPC)
      --shutdown-grace SECS  time in-flight requests get after SIGTERM/SIGINT [5]
      --sse-keep-alive SECS  keep-alive interval on change streams (SSE, EventStream) [15]
      --max-sse-streams N    change streams open at once, of each kind (SSE, EventStream,
                             SyncFlags); more get 503 or RESOURCE_EXHAUSTED [10000]
      --max-connections N    connections open at once per port [16384]
      --max-body BYTES       largest request body; larger get 413 [1048576]
      --debounce-ms MS       quiet time after a file change before reloading [100]

On start, the bound addresses are printed to standard output, one line each
(\"ofrep listening on ADDR\", \"evaluation listening on ADDR\", \"sync
listening on ADDR\", \"management listening on ADDR\"), then
\"ready\" once every flag file loaded. Logs go to standard error; RUST_LOG
sets their level (for example RUST_LOG=info,acqrel_flagd=debug).

Exit status:
  0  stopped by SIGTERM or SIGINT after draining
  1  a flag file failed to load at start, or a port could not be bound
  2  a usage error
  130  a second SIGTERM or SIGINT during the drain";

fn lossy(arg: &OsString) -> String {
    arg.to_string_lossy().into_owned()
}

fn invalid(flag: &str, value: &str, reason: impl fmt::Display) -> UsageError {
    UsageError::InvalidValue {
        flag: flag.to_owned(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

fn parse_value<T>(flag: &str, value: &OsString) -> Result<T, UsageError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let text = value
        .to_str()
        .ok_or_else(|| invalid(flag, &lossy(value), "not UTF-8"))?;
    text.parse().map_err(|err| invalid(flag, text, err))
}

/// `file:PATH` (also `file://PATH`, as flagd accepts both) to `PATH`.
fn file_uri(value: &OsString) -> Result<PathBuf, UsageError> {
    let text = value
        .to_str()
        .ok_or_else(|| invalid("--uri", &lossy(value), "not UTF-8"))?;
    let path = text
        .strip_prefix("file://")
        .or_else(|| text.strip_prefix("file:"))
        .ok_or_else(|| {
            invalid(
                "--uri",
                text,
                "only file:PATH sources are supported (http, grpc and kubernetes sources are not)",
            )
        })?;
    if path.is_empty() {
        return Err(invalid("--uri", text, "the path is empty"));
    }
    Ok(PathBuf::from(path))
}

/// `N/s` (or a plain `N`) requests per second, N ≥ 1.
fn rate(flag: &str, value: &OsString) -> Result<NonZeroU32, UsageError> {
    let text = value
        .to_str()
        .ok_or_else(|| invalid(flag, &lossy(value), "not UTF-8"))?;
    let number = text.strip_suffix("/s").unwrap_or(text);
    number
        .parse::<NonZeroU32>()
        .map_err(|err| invalid(flag, text, format_args!("expected N/s with N ≥ 1 ({err})")))
}

/// Whole or fractional seconds, at most a day.
fn seconds(flag: &str, value: &OsString) -> Result<Duration, UsageError> {
    let text = value
        .to_str()
        .ok_or_else(|| invalid(flag, &lossy(value), "not UTF-8"))?;
    let secs: f64 = text
        .strip_suffix('s')
        .unwrap_or(text)
        .parse()
        .map_err(|err| invalid(flag, text, err))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(invalid(flag, text, "expected 0 to 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(args: &[&str]) -> Result<Options, UsageError> {
        let mut all = vec!["start"];
        all.extend_from_slice(args);
        match Options::parse(all)? {
            Command::Start(options) => Ok(options),
            other => panic!("not start: {other:?}"),
        }
    }

    #[test]
    fn uris_repeat_in_order_and_accept_both_spellings() {
        let options = start(&[
            "--uri",
            "file:a.json",
            "-f",
            "file:///abs/b.json",
            "--uri=file:c.json",
        ])
        .unwrap();
        let files: Vec<_> = options.files.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(files, ["a.json", "/abs/b.json", "c.json"]);
    }

    #[test]
    fn a_comma_separated_uri_is_several_files_as_in_flagd() {
        let options = start(&["-f", "file:a.json,file:b.json", "-r", "0"]).unwrap();
        let files: Vec<_> = options.files.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(files, ["a.json", "b.json"]);
        assert_eq!(options.ofrep_port, 0);
        assert!(matches!(
            start(&["-f", "file:a.json,"]),
            Err(UsageError::InvalidValue { .. })
        ));
    }

    #[test]
    fn every_flag_parses() {
        let options = start(&[
            "-f",
            "file:a",
            "--bind",
            "0.0.0.0",
            "--ofrep-port",
            "1",
            "-m",
            "2",
            "-p",
            "3",
            "-g",
            "4",
            "--rate-limit",
            "50/s",
            "--shutdown-grace",
            "2.5",
            "--sse-keep-alive",
            "1s",
            "--max-sse-streams",
            "7",
            "--max-connections",
            "9",
            "--max-body",
            "10",
            "--debounce-ms",
            "20",
        ])
        .unwrap();
        assert_eq!(options.bind, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            (
                options.ofrep_port,
                options.management_port,
                options.port,
                options.sync_port
            ),
            (1, 2, 3, 4)
        );
        assert_eq!(options.rate_limit, NonZeroU32::new(50));
        assert_eq!(options.shutdown_grace, Duration::from_millis(2500));
        assert_eq!(options.sse_keep_alive, Duration::from_secs(1));
        assert_eq!(
            (
                options.max_sse_streams.get(),
                options.max_connections.get(),
                options.max_body
            ),
            (7, 9, 10)
        );
        assert_eq!(options.debounce, Duration::from_millis(20));
    }

    #[test]
    fn mistakes_are_typed() {
        assert_eq!(
            Options::parse(Vec::<String>::new()),
            Err(UsageError::NoCommand)
        );
        assert!(
            matches!(Options::parse(["serve"]), Err(UsageError::UnknownCommand(c)) if c == "serve")
        );
        assert!(
            matches!(start(&["-f", "file:a", "--nope"]), Err(UsageError::UnknownFlag(f)) if f == "--nope")
        );
        assert!(matches!(start(&["-f"]), Err(UsageError::MissingValue(f)) if f == "-f"));
        assert!(matches!(
            start(&["-f", "file:a", "--ofrep-port", "70000"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert!(matches!(
            start(&["-f", "file:a", "--rate-limit", "0/s"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert!(matches!(
            start(&["-f", "file:a", "--shutdown-grace", "-1"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert!(matches!(
            start(&["-f", "file:a", "--sse-keep-alive", "0"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert!(matches!(
            start(&["-f", "file:a", "--max-sse-streams", "0"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert!(matches!(
            start(&["-f", "http://x/flags.json"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert!(matches!(
            start(&["-f", "file:"]),
            Err(UsageError::InvalidValue { .. })
        ));
        assert_eq!(start(&[]), Err(UsageError::NoUri));
    }

    #[test]
    fn help_anywhere_wins() {
        assert_eq!(Options::parse(["start", "--help"]), Ok(Command::Help));
        assert_eq!(Options::parse(["-h"]), Ok(Command::Help));
    }
}
