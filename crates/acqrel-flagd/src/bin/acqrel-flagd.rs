//! `acqrel-flagd`: the flag service as a daemon (`acqrel-flagd --help`).
//!
//! Standard output carries the bound addresses and "ready" (one line
//! each, for scripts and tests that pass port 0); logs go to standard
//! error, filtered by `RUST_LOG`.

use std::io::Write;
use std::process::ExitCode;

use acqrel_flagd::{Command, Options, Server, USAGE};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    let command = match Options::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("acqrel-flagd: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("acqrel-flagd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Start(options) => start(options),
    }
}

/// Logs to standard error, at the levels `RUST_LOG` names (`info` when it
/// is unset or does not parse).
fn init_logging() {
    let default = || Targets::new().with_default(tracing::Level::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => spec.parse::<Targets>().unwrap_or_else(|error| {
            eprintln!("acqrel-flagd: RUST_LOG={spec:?} is not a list of target=level ({error}); using info");
            default()
        }),
        Err(_) => default(),
    };
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}

fn start(options: Options) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("acqrel-flagd: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(serve(options));
    // Without waiting for blocking threads: a first load still stuck
    // reading a flag file (a hung mount, a FIFO no one writes) would keep
    // the stopped server alive, deaf to signals, until it returned.
    runtime.shutdown_background();
    code
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

async fn serve(options: Options) -> ExitCode {
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("acqrel-flagd: cannot handle signals: {error}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::bind(options).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("acqrel-flagd: {error}");
            return ExitCode::from(1);
        }
    };
    say(&format!("ofrep listening on {}", server.ofrep_addr()));
    say(&format!(
        "evaluation listening on {}",
        server.evaluation_addr()
    ));
    say(&format!("sync listening on {}", server.sync_addr()));
    say(&format!(
        "management listening on {}",
        server.management_addr()
    ));
    let running = server.serve();
    tokio::select! {
        loaded = running.load() => match loaded {
            Ok(()) => say("ready"),
            Err(error) => {
                eprintln!("acqrel-flagd: {error}");
                running.shutdown().await;
                return ExitCode::from(1);
            }
        },
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    if running.is_ready() {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
    tracing::info!("shutting down");
    // A second signal during the drain exits at once.
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        eprintln!("acqrel-flagd: second signal; exiting without draining");
        std::process::exit(130);
    });
    let report = running.shutdown().await;
    tracing::info!(
        drained = report.drained,
        aborted = report.aborted,
        "stopped"
    );
    ExitCode::SUCCESS
}
