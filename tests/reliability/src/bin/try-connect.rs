//! `try-connect <socket>`: connects to a unix socket and says how that went, for the
//! security tests to run as an unprivileged user. Prints `connected` (exit 0) or the errno's
//! name, e.g. `EACCES` (exit 1).

fn main() {
    let Some(socket) = std::env::args_os().nth(1) else {
        eprintln!("usage: try-connect <unix socket path>");
        std::process::exit(2);
    };
    match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(_) => println!("connected"),
        Err(error) => {
            let errno = nix::errno::Errno::from_raw(error.raw_os_error().unwrap_or(0));
            println!("{errno:?}");
            std::process::exit(1);
        }
    }
}
