//! The static `undertaker-init` binary: C entry point, panic handler, allocator. All the work is
//! in the library.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int};

use undertaker_init::sys::{self, CAllocator, MainArgs};

// The `libc` crate names no library outside std (std links the C library itself), so the C
// library is linked here: musl's, statically, through musl-gcc.
#[link(name = "c")]
extern "C" {}

#[global_allocator]
static ALLOCATOR: CAllocator = CAllocator;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let _ = sys::write(2, b"undertaker-init: internal error\n");
    sys::exit_now(undertaker_init::EXIT_INIT_FAILED)
}

// `no_mangle` is what makes this the C `main`; the lint counts that as unsafe code.
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *mut *mut c_char) -> c_int {
    // SAFETY: these are the C runtime's own arguments to main, used by nothing else.
    let args = unsafe { MainArgs::from_main(argc, argv, envp) };
    undertaker_init::run(args)
}
