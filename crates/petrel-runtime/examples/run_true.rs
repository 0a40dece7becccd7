//! Runs one command in a rootfs with default settings: `run_true ROOTFS CMD...`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = petrel_runtime::ContainerSpec::new(&args[0], args[1..].to_vec());
    let outcome = petrel_runtime::run(&spec).expect("run");
    std::process::exit(outcome.status.shell_status().into());
}
