//! An image reference that a container runtime would read as its own option
//! (`--volume=/:/host`) is refused by name, for `docker_image` and `container_image`
//! alike; ordinary references still pass.

use petrel_submit::{Submission, SubmitOptions};

fn submit(text: &str) -> Result<Vec<petrel_submit::JobAd>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("job.sub");
    std::fs::write(&path, text).expect("write submit file");
    let sub = Submission::from_file(&path, &SubmitOptions::default()).map_err(|e| e.to_string())?;
    sub.procs()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

#[test]
fn option_like_images_are_refused() {
    for (universe, key) in [
        ("docker", "docker_image"),
        ("container", "container_image"),
        ("container", "docker_image"),
    ] {
        for bad in ["--volume=/:/host", "-v", "--privileged", "-"] {
            let text = format!(
                "universe = {universe}\n{key} = {bad}\nexecutable = /bin/true\n\
                 transfer_executable = false\nqueue\n"
            );
            let msg = submit(&text).expect_err(bad);
            assert!(
                msg.contains(key) && msg.contains(bad) && msg.contains("never starts with '-'"),
                "{key} = {bad}: {msg}"
            );
        }
        let text = format!(
            "universe = {universe}\n{key} = busybox:1.36\nexecutable = /bin/true\n\
             transfer_executable = false\nqueue\n"
        );
        assert!(submit(&text).is_ok(), "{key} = busybox:1.36");
    }
}
