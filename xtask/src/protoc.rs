//! `cargo xtask install-protoc`: makes sure a `protoc` is there for the
//! crates that need one to build, installing Debian's `protobuf-compiler`
//! (and `libprotobuf-dev`, for the well-known types) when it is missing. `cargo xtask ci` and `cargo xtask bench` call the
//! same check first.
//!
//! acqrel-flagd itself needs none (its build script compiles flagd's
//! schemas with protox, in Rust). Its tests do: the flagd provider they
//! talk to, `open-feature-flagd`, generates its gRPC code with `protoc` in
//! its build script. `PROTOC` names another binary, which is then used as
//! it is (prost-build reads the same variable).

use crate::apt::{Tool, install_task};
use crate::cmd::DynError;

/// Usage of `cargo xtask install-protoc`.
const HELP: &str = "\
Make sure protoc is installed (open-feature-flagd, the flagd provider
acqrel-flagd's tests use, needs it to build), installing Debian's
protobuf-compiler and libprotobuf-dev packages if they are missing.

Usage: cargo xtask install-protoc

Needs root (or the package already installed) on Debian 12. With PROTOC
set, checks that binary instead and installs nothing.
";

/// Runs `cargo xtask install-protoc` with the arguments after it.
pub(crate) fn run(args: &[String]) -> Result<(), DynError> {
    install_task("install-protoc", HELP, args, ensure_installed)
}

/// Succeeds when a `protoc` runs, installing Debian's package first if
/// there is none.
///
/// # Errors
///
/// When there is none and installing fails: the message says how to
/// provide one.
pub(crate) fn ensure_installed() -> Result<(), DynError> {
    Tool {
        name: "protoc",
        binary: "protoc",
        // The compiler, and the well-known types (`google/protobuf/*.proto`
        // under /usr/include, where Debian's protoc looks) that flagd's
        // schemas import.
        packages: &["protobuf-compiler", "libprotobuf-dev"],
        env: "PROTOC",
        needed_by: "acqrel-flagd's tests (through open-feature-flagd's build script)",
    }
    .ensure_installed()
}
