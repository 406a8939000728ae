//! The shim binary is a position-dependent executable (ELF type `ET_EXEC`), not a PIE
//! (`ET_DYN`): a PIE's relocated `.data.rel.ro` is private memory in every pod's shim
//! (`crates/shim/build.rs`, docs/decisions.md).

const ET_EXEC: u16 = 2;

#[test]
fn the_shim_links_at_a_fixed_address() {
    let path = env!("CARGO_BIN_EXE_containerd-shim-undertaker-v2");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..4], b"\x7fELF", "{path} is not an ELF file");
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert_eq!(e_type, ET_EXEC, "{path}: ELF type {e_type} (3 is a PIE)");
}
