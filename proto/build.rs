//! Compiles proto/*.proto with protox (a pure-Rust protobuf compiler), so building needs no system
//! `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/kv.proto",
        "proto/auth.proto",
        "proto/rpc.proto",
        "proto/v3lock.proto",
        "proto/v3election.proto",
        "proto/raft.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        // Keys and values stay reference-counted from the socket buffer to the store.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
