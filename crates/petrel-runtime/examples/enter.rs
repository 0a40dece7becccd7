//! Runs a command in a running container: `enter PID CMD...` (PID: the container's init, as
//! `Container::pid` gives it). The terminal is passed through, so `enter PID /bin/sh` gives
//! an interactive shell.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((pid, argv)) = args.split_first() else {
        eprintln!("usage: enter PID CMD...");
        std::process::exit(2);
    };
    let Ok(pid) = pid.parse() else {
        eprintln!("enter: '{pid}' is not a pid");
        std::process::exit(2);
    };
    let mut spec = petrel_runtime::ExecSpec::new(argv.to_vec());
    if let Ok(term) = std::env::var("TERM") {
        spec.env.push(format!("TERM={term}"));
    }
    match petrel_runtime::exec_in(pid, &spec) {
        Ok(status) => std::process::exit(status.shell_status().into()),
        Err(err) => {
            eprintln!("enter: {err}");
            std::process::exit(err.exit_status().into());
        }
    }
}
