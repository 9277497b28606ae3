//! Generates the cluster gRPC code from proto/cluster.proto with a vendored protoc, so a
//! fresh machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.bytes(["."]);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/cluster.proto"],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto/cluster.proto");
    Ok(())
}
