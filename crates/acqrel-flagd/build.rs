//! Compiles flagd's vendored protocol schemas (`proto/`, Apache-2.0, from
//! buf.build/open-feature/flagd) into the gRPC server and client code of
//! `acqrel_flagd::proto`.
//!
//! protox parses the `.proto` files in Rust, so building needs no system
//! `protoc`; the well-known `google/protobuf/struct.proto` comes with it.

use std::error::Error;

const PROTOS: [&str; 3] = [
    "proto/flagd/evaluation/v1/evaluation.proto",
    "proto/flagd/evaluation/v2/evaluation.proto",
    "proto/flagd/sync/v1/sync.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Clients are generic over their transport: the library needs no
        // tonic channel, and the tests bring one.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
