//! `wxlogin`: parses the command line and runs the subcommand (`wxlogin::cli`).

use std::process::ExitCode;

/// mimalloc: a request makes many small, short-lived allocations (futures, headers, Redis
/// replies), which it serves faster than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wxlogin: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wxlogin::cli::run(std::env::args_os().collect())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wxlogin: {e}");
            ExitCode::FAILURE
        }
    }
}
