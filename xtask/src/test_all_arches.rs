//! `cargo xtask test-all-arches`: the workspace's tests cross-compiled for
//! other architectures and run under qemu-user.
//!
//! Set-up is part of the command, so a fresh Debian machine needs nothing by
//! hand: the Debian packages (qemu-user, a cross C compiler and C library
//! per target) are installed when missing, with at most one `apt-get update`;
//! the target's standard library comes from `rustup target add` for the
//! pinned toolchain or, if that fails (or with `--fallback`), from Debian's
//! own compiler building std from source (`-Zbuild-std`). Foreign dpkg
//! architectures are never added: the cross C libraries live under
//! `/usr/<gnu-triple>` and qemu finds them with `-L`.
//!
//! What a pass proves: the code builds for the target, its atomics, pointer
//! width and byte order are right there, and its tests pass. What it does not
//! prove: qemu-user on an x86-64 host runs the guest's threads on the host's
//! memory model, so weak-memory reorderings are not reproduced; the loom
//! models check orderings. See `docs/cross-arch.md`.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use crate::apt::Apt;
use crate::cmd::{self, Cmd, DynError, fmt_duration};

/// Usage of `cargo xtask test-all-arches`.
const HELP: &str = "\
Run the workspace's tests cross-compiled for other architectures, under qemu-user.

Usage: cargo xtask test-all-arches [--target T]... [--package P]... [--setup-only] [--fallback] [-- ARGS...]

Targets (all by default):
  aarch64-unknown-linux-gnu        64-bit Arm, weakly ordered
  riscv64gc-unknown-linux-gnu      64-bit RISC-V, weakly ordered
  powerpc64le-unknown-linux-gnu    64-bit POWER, weakly ordered
  s390x-unknown-linux-gnu          64-bit big-endian
  armv7-unknown-linux-gnueabihf    32-bit Arm

Options:
  --target T    Run only target T (repeatable)
  --package P   Test only package P, default features (repeatable; the
                whole workspace but acqrel-benches otherwise)
  --setup-only  Install what the targets need, then exit
  --fallback    Use Debian's rustc with -Zbuild-std instead of `rustup target add`
  -- ARGS       Passed on to `cargo test`
  -h, --help    Print this help

Needs root (or the packages already installed) on Debian 12. Tests see
ACQREL_STRESS_DIVISOR=10, so stress tests scale down under emulation.
";

/// Debian package providing every `qemu-<arch>` user-mode emulator.
const QEMU_PACKAGE: &str = "qemu-user";

/// Debian's compiler and std source, for the `-Zbuild-std` fallback.
const FALLBACK_PACKAGES: [&str; 4] = [
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev",
    "rust-web-src",
];

/// How much the stress tests divide their iteration counts by under qemu
/// (code runs about ten times slower there).
const STRESS_DIVISOR: &str = "10";

/// One cross target and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arch {
    /// Rust target triple.
    triple: &'static str,
    /// GNU triple: the cross gcc's prefix and the sysroot under `/usr`.
    gnu: &'static str,
    /// qemu-user binary.
    qemu: &'static str,
    /// Debian packages: the cross C compiler and its C library.
    packages: [&'static str; 2],
}

/// Every target, in the order they run.
const ARCHES: [Arch; 5] = [
    Arch {
        triple: "aarch64-unknown-linux-gnu",
        gnu: "aarch64-linux-gnu",
        qemu: "qemu-aarch64",
        packages: ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
    },
    Arch {
        triple: "riscv64gc-unknown-linux-gnu",
        gnu: "riscv64-linux-gnu",
        qemu: "qemu-riscv64",
        packages: ["gcc-riscv64-linux-gnu", "libc6-dev-riscv64-cross"],
    },
    Arch {
        triple: "powerpc64le-unknown-linux-gnu",
        gnu: "powerpc64le-linux-gnu",
        qemu: "qemu-ppc64le",
        packages: ["gcc-powerpc64le-linux-gnu", "libc6-dev-ppc64el-cross"],
    },
    Arch {
        triple: "s390x-unknown-linux-gnu",
        gnu: "s390x-linux-gnu",
        qemu: "qemu-s390x",
        packages: ["gcc-s390x-linux-gnu", "libc6-dev-s390x-cross"],
    },
    Arch {
        triple: "armv7-unknown-linux-gnueabihf",
        gnu: "arm-linux-gnueabihf",
        qemu: "qemu-arm",
        packages: ["gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross"],
    },
];

impl Arch {
    /// The `<TRIPLE>` part of cargo's `CARGO_TARGET_<TRIPLE>_*` variables.
    fn env_key(self) -> String {
        self.triple.to_ascii_uppercase().replace(['-', '.'], "_")
    }

    /// Sets the linker and the qemu runner for this target on `command`.
    fn configure(self, command: Cmd) -> Cmd {
        let key = self.env_key();
        command
            .env(
                &format!("CARGO_TARGET_{key}_LINKER"),
                format!("{}-gcc", self.gnu),
            )
            .env(
                &format!("CARGO_TARGET_{key}_RUNNER"),
                format!("{} -L /usr/{}", self.qemu, self.gnu),
            )
    }
}

/// Where the target's standard library comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    /// `rustup target add` for the pinned toolchain.
    Rustup,
    /// Debian's compiler, building std from source.
    BuildStd,
}

impl Std {
    fn name(self) -> &'static str {
        match self {
            Std::Rustup => "rustup",
            Std::BuildStd => "build-std",
        }
    }
}

/// Parsed command line.
#[derive(Debug, PartialEq)]
struct Options {
    arches: Vec<Arch>,
    setup_only: bool,
    fallback: bool,
    /// Empty: the workspace.
    packages: Vec<String>,
    test_args: Vec<String>,
}

/// Runs `cargo xtask test-all-arches` with the arguments after the task.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    let Some(options) = parse_args(args)? else {
        print!("{HELP}");
        return Ok(());
    };
    let std = setup(&options)?;
    if options.setup_only {
        println!("test-all-arches: set-up done ({})", std.name());
        return Ok(());
    }
    let mut outcomes = Vec::new();
    for &arch in &options.arches {
        let outcome = test_arch(arch, std, &selection(&options.packages), &options.test_args)?;
        println!(
            "test-all-arches: {} ... {} ({} passed, {} failed, {})",
            arch.triple,
            if outcome.ok { "ok" } else { "FAILED" },
            outcome.counts.passed,
            outcome.counts.failed,
            fmt_duration(outcome.elapsed)
        );
        outcomes.push((arch, outcome));
    }
    let table = table(std, &outcomes);
    print!("{table}");
    let (passed, failed) = outcomes.iter().fold((0, 0), |(p, f), (_, o)| {
        (p + o.counts.passed, f + o.counts.failed)
    });
    println!("test-all-arches: {passed} passed, {failed} failed");
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| !o.ok)
        .map(|(a, _)| a.triple)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("tests failed on: {}", failed.join(", ")).into())
    }
}

/// Parses the arguments; `None` when help was asked for.
fn parse_args(args: &[String]) -> Result<Option<Options>, DynError> {
    let mut options = Options {
        arches: Vec::new(),
        setup_only: false,
        fallback: false,
        packages: Vec::new(),
        test_args: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if crate::is_help(arg) {
            return Ok(None);
        } else if arg == "--" {
            options.test_args = it.by_ref().cloned().collect();
        } else if arg == "--setup-only" {
            options.setup_only = true;
        } else if arg == "--fallback" {
            options.fallback = true;
        } else if let Some(package) = crate::option_value("--package", arg, &mut it)? {
            options.packages.push(package.to_owned());
        } else if let Some(triple) = crate::option_value("--target", arg, &mut it)? {
            let arch = ARCHES.iter().find(|a| a.triple == triple).ok_or_else(|| {
                let known: Vec<_> = ARCHES.iter().map(|a| a.triple).collect();
                format!("unknown target `{triple}` (targets: {})", known.join(", "))
            })?;
            if !options.arches.contains(arch) {
                options.arches.push(*arch);
            }
        } else {
            return Err(format!(
                "unknown argument `{arg}` (see `cargo xtask test-all-arches --help`)"
            )
            .into());
        }
    }
    if options.arches.is_empty() {
        options.arches = ARCHES.to_vec();
    }
    Ok(Some(options))
}

// ===== set-up =====

/// Installs what the selected targets need and says where std comes from.
fn setup(options: &Options) -> Result<Std, DynError> {
    let mut apt = Apt::new("test-all-arches");
    let mut packages = vec![QEMU_PACKAGE];
    packages.extend(options.arches.iter().flat_map(|a| a.packages));
    if options.fallback {
        packages.extend(FALLBACK_PACKAGES);
        apt.install_missing(&packages)?;
        return Ok(Std::BuildStd);
    }
    apt.install_missing(&packages)?;
    let triples = options.arches.iter().map(|a| a.triple);
    // Run from the workspace root (the default), so rustup adds the targets
    // to the toolchain pinned in rust-toolchain.toml.
    match Cmd::new("rustup")
        .args(["target", "add"])
        .args(triples)
        .run()
    {
        Ok(_) => Ok(Std::Rustup),
        Err(e) => {
            eprintln!(
                "test-all-arches: `rustup target add` failed ({e}); \
                 falling back to Debian's rustc with -Zbuild-std"
            );
            apt.install_missing(&FALLBACK_PACKAGES)?;
            Ok(Std::BuildStd)
        }
    }
}

// ===== running =====

/// How one target's run went.
#[derive(Debug)]
struct Outcome {
    ok: bool,
    counts: Counts,
    elapsed: Duration,
}

/// Tests counted from libtest's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
}

/// Left out of the cross-architecture runs: the benches crate. Its tests
/// cover only the helpers the bench files share, and its dev-dependencies
/// (criterion and every anchor crate: governor, moka, async-broadcast...)
/// would be compiled once per architecture for nothing: the benches run on
/// the development machine, not under qemu.
///
/// Nor acqrel-ratelimit-redis: its decisions are made by a Lua script inside
/// `redis-server` (which would run natively, not under qemu) in integer
/// pairs that are the same on every target, and its client side is a tokio
/// connection and a handful of integers read from a reply; the Redis
/// client's 60-odd crates would be compiled for each of the five targets
/// to exercise none of the byte-order or atomics questions these runs are
/// for.
///
/// Nor acqrel-flagd: the daemon composes acqrel-flags, acqrel-bus,
/// acqrel-pool and acqrel-ratelimit (each tested on every architecture
/// here) with hyper, and its own code has no atomic that publishes anything
/// (one `Relaxed` count of open streams). Its tests start the binary and
/// talk to it over loopback with an OpenFeature client whose HTTP stack
/// (reqwest, rustls, aws-lc's C sources) would have to be cross-compiled
/// for each of the five targets: minutes of CI per architecture for no
/// byte-order or ordering question. It runs natively in `cargo xtask ci`.
const EXCLUDED: [&str; 6] = [
    "--exclude",
    "acqrel-benches",
    "--exclude",
    "acqrel-ratelimit-redis",
    "--exclude",
    "acqrel-flagd",
];

/// The optional features the cross-architecture runs turn on: those with
/// code of their own that touches concurrency or the file system
/// (acqrel-flags' change-event ordering and hot reload). Not
/// `acqrel-flags/openfeature`: a mapping between two value types over the
/// same evaluation, whose SDK brings a dozen crates (mockall, time,
/// typed-builder) that would add about 20 s per architecture to CI for no
/// byte-order or atomics question; it runs natively in `cargo xtask ci`.
const FEATURES: &str = "acqrel-flags/events,acqrel-flags/watch";

/// The `cargo test` arguments choosing what to test: each of `packages`
/// with its default features, or, when there are none, the workspace
/// without the benches, with [`FEATURES`].
fn selection(packages: &[String]) -> Vec<String> {
    if packages.is_empty() {
        let mut args = crate::strings(&["--workspace", "--features", FEATURES]);
        args.extend(crate::strings(&EXCLUDED));
        args
    } else {
        packages
            .iter()
            .flat_map(|p| ["-p".to_owned(), p.clone()])
            .collect()
    }
}

/// Builds and runs the tests `selection` chooses for `arch` under qemu.
///
/// The output is captured, written to `<target>/xarch/<triple>.log`, and its
/// end printed when the run fails.
fn test_arch(
    arch: Arch,
    std: Std,
    selection: &[String],
    test_args: &[String],
) -> Result<Outcome, DynError> {
    let logs = cmd::target_dir().join("xarch");
    let command = match std {
        Std::Rustup => Cmd::cargo()
            .clean_flags()
            .args(["test", "--target", arch.triple])
            .args(selection)
            .env("CARGO_TARGET_DIR", &logs),
        // Debian's cargo, told to use Debian's rustc and rustdoc: without
        // them it would find the rustup proxies and look for a rust-src
        // component that is not there.
        Std::BuildStd => Cmd::new("/usr/bin/cargo")
            .clean_flags()
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTDOC", "/usr/bin/rustdoc")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["test", "-Zbuild-std", "--target", arch.triple])
            .args(selection)
            .env(
                "CARGO_TARGET_DIR",
                cmd::target_dir().join("xarch-build-std"),
            ),
    };
    let command = arch
        .configure(command)
        .env("ACQREL_STRESS_DIVISOR", STRESS_DIVISOR)
        .args(test_args);
    let captured = command.run_captured()?;
    fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{}.log", arch.triple));
    fs::write(&log, &captured.output)?;
    let counts = count_tests(&captured.output);
    let ok = captured.status.success();
    if !ok {
        let lines: Vec<&str> = captured.output.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        eprintln!("{}", tail.join("\n"));
        eprintln!("test-all-arches: full log in {}", log.display());
    }
    Ok(Outcome {
        ok,
        counts,
        elapsed: captured.elapsed,
    })
}

/// Adds up every `test result: … N passed; M failed; …` line.
fn count_tests(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines() {
        let Some(rest) = line.trim_start().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = number.parse::<u64>() else {
                continue;
            };
            match kind {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                _ => {}
            }
        }
    }
    counts
}

/// The summary table.
fn table(std: Std, outcomes: &[(Arch, Outcome)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n| target | std | result | passed | failed | time |");
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|");
    for (arch, o) in outcomes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} s |",
            arch.triple,
            std.name(),
            if o.ok { "ok" } else { "FAILED" },
            o.counts.passed,
            o.counts.failed,
            o.elapsed.as_secs_f64()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::not_installed;
    use crate::strings;

    #[test]
    fn env_keys_follow_cargo() {
        assert_eq!(ARCHES[0].env_key(), "AARCH64_UNKNOWN_LINUX_GNU");
        assert_eq!(ARCHES[4].env_key(), "ARMV7_UNKNOWN_LINUX_GNUEABIHF");
        let shown = ARCHES[1].configure(Cmd::new("cargo")).to_string();
        assert_eq!(
            shown,
            "CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER=riscv64-linux-gnu-gcc \
             CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER='qemu-riscv64 -L /usr/riscv64-linux-gnu' cargo"
        );
    }

    #[test]
    fn arguments() {
        let all = parse_args(&[]).unwrap().unwrap();
        assert_eq!(all.arches, ARCHES.to_vec());
        assert!(!all.setup_only && !all.fallback && all.test_args.is_empty());

        let some = parse_args(&strings(&[
            "--target",
            "s390x-unknown-linux-gnu",
            "--target=aarch64-unknown-linux-gnu",
            "--target",
            "s390x-unknown-linux-gnu",
            "--fallback",
            "--package",
            "acqrel-core",
            "--",
            "--lib",
            "--target",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(some.arches, vec![ARCHES[3], ARCHES[0]]);
        assert!(some.fallback && !some.setup_only);
        assert_eq!(some.packages, strings(&["acqrel-core"]));
        assert_eq!(some.test_args, strings(&["--lib", "--target"]));
        assert_eq!(selection(&some.packages), strings(&["-p", "acqrel-core"]));
        assert_eq!(
            selection(&[]),
            strings(&[
                "--workspace",
                "--features",
                FEATURES,
                "--exclude",
                "acqrel-benches",
                "--exclude",
                "acqrel-ratelimit-redis",
                "--exclude",
                "acqrel-flagd",
            ])
        );

        assert_eq!(parse_args(&strings(&["--help"])).unwrap(), None);
        assert_eq!(
            parse_args(&strings(&["--target", "mips-unknown-linux-gnu"]))
                .unwrap_err()
                .to_string(),
            "unknown target `mips-unknown-linux-gnu` (targets: aarch64-unknown-linux-gnu, \
             riscv64gc-unknown-linux-gnu, powerpc64le-unknown-linux-gnu, \
             s390x-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)"
        );
        assert_eq!(
            parse_args(&strings(&["--quick"])).unwrap_err().to_string(),
            "unknown argument `--quick` (see `cargo xtask test-all-arches --help`)"
        );
    }

    #[test]
    fn reads_dpkg_status() {
        let output = "\
qemu-user install ok installed
gcc-aarch64-linux-gnu deinstall ok config-files
libc6-dev-arm64-cross:all install ok installed
";
        assert_eq!(
            not_installed(
                &[
                    "qemu-user",
                    "gcc-aarch64-linux-gnu",
                    "libc6-dev-arm64-cross",
                    "rustc-web"
                ],
                output
            ),
            vec!["gcc-aarch64-linux-gnu", "rustc-web"]
        );
        assert!(not_installed(&["qemu-user"], output).is_empty());
    }

    #[test]
    fn counts_libtest_results() {
        let output = "\
running 23 tests
test result: ok. 23 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.15s
test result: FAILED. 7 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.0s
   Doc-tests acqrel_core
test result: ok. 81 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.15s
test snapshot::tests::passed ... ok
";
        assert_eq!(
            count_tests(output),
            Counts {
                passed: 111,
                failed: 2
            }
        );
        assert_eq!(count_tests("no tests here"), Counts::default());
    }

    #[test]
    fn summary_table() {
        let outcome = |ok, passed, failed| Outcome {
            ok,
            counts: Counts { passed, failed },
            elapsed: Duration::from_millis(12_345),
        };
        let table = table(
            Std::Rustup,
            &[
                (ARCHES[0], outcome(true, 150, 0)),
                (ARCHES[3], outcome(false, 149, 1)),
            ],
        );
        assert_eq!(
            table,
            "
| target | std | result | passed | failed | time |
|---|---|---|--:|--:|--:|
| aarch64-unknown-linux-gnu | rustup | ok | 150 | 0 | 12.3 s |
| s390x-unknown-linux-gnu | rustup | FAILED | 149 | 1 | 12.3 s |
"
        );
    }
}
