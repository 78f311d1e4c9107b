// Compiles the typed API in proto/healthai/v1 with protox, a protobuf compiler in Rust, so
// that building needs no `protoc` on the machine. The encoded descriptor set serves gRPC
// reflection.
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut protos: Vec<PathBuf> = fs::read_dir("proto/healthai/v1")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&protos)?;
    fs::write(
        out_dir.join("healthai_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
