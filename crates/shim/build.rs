//! Links the shim as a position-dependent executable on glibc targets (`-no-pie`), as Go links
//! containerd's runc shim. A PIE's `.data.rel.ro` (vtables, string tables: 257 kB here) is
//! relocated when each process starts, so every shim held those pages as private dirty memory;
//! at a fixed address they need no relocation and stay clean pages of the binary, shared by all
//! shims. See docs/decisions.md ("The shim is not a PIE").
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
