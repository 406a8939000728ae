//! Generates the Rust types for `proto/undertaker/events/v1/events.proto` with rust-protobuf's
//! pure-Rust parser (no `protoc` needed at build time), for the same protobuf 3.x runtime that
//! ttrpc and containerd-shim-protos use, so the shim can publish them as `MessageDyn`.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("proto");
    let proto_dir = root.join("../../proto");
    let events = proto_dir.join("undertaker/events/v1/events.proto");
    println!("cargo:rerun-if-changed={}", events.display());

    std::fs::create_dir_all(&out).expect("create OUT_DIR/proto");
    protobuf_codegen::Codegen::new()
        .pure()
        .include(&proto_dir)
        .input(&events)
        .out_dir(&out)
        .run_from_script();

    // `include!` cannot take a file with inner attributes or inner doc comments; lib.rs puts
    // the equivalent `allow`s on the module it includes the file into.
    let generated = out.join("events.rs");
    let text = std::fs::read_to_string(&generated).expect("read generated events.rs");
    let kept: String = text
        .lines()
        .filter(|line| !line.starts_with("#!") && !line.starts_with("//!"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&generated, kept).expect("rewrite generated events.rs");
}
