//! Container policy, after GlideinWMS: the pool and the job each say whether a job runs
//! in a container (REQUIRED, PREFERRED, OPTIONAL or NEVER), and the two combine as
//! GlideinWMS combines a VO's `GLIDEIN_Singularity_Use` with a site's
//! `GLIDEIN_SINGULARITY_REQUIRE` (`singularity_setup.sh`, `combine_requirements`):
//!
//! | job \ pool | REQUIRED  | PREFERRED | OPTIONAL  | NEVER   |
//! |------------|-----------|-----------|-----------|---------|
//! | REQUIRED   | container | container | container | refused |
//! | PREFERRED  | container | preferred | preferred | host    |
//! | OPTIONAL   | container | preferred | host      | host    |
//! | NEVER      | refused   | host      | host      | host    |
//!
//! A container needs an image: the job's, else the pool's `CONTAINER_DEFAULT_IMAGE`. The
//! image must pass the pool's `CONTAINER_IMAGE_ALLOW` / `CONTAINER_IMAGE_DENY` globs and
//! must not be one a validation script failed on here lately. When any of that fails, a
//! REQUIRED outcome refuses the job (it stays idle, and `petrel q -better-analyze` says
//! why); a PREFERRED one runs it on the host instead, as GlideinWMS falls back to no
//! Singularity.
//!
//! A job that states no policy is REQUIRED when it names an image and OPTIONAL when not
//! (a vanilla job); the pool's default is OPTIONAL, GlideinWMS's site default.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use petrel_classad::ClassAd;
use serde::{Deserialize, Serialize};

/// The job attribute (and submit command `container_policy`) and the slot attribute.
pub const POLICY_ATTR: &str = "ContainerPolicy";
/// The slot attribute that advertises the pool's default image.
pub const DEFAULT_IMAGE_ATTR: &str = "ContainerDefaultImage";

/// How much one side wants a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerPolicy {
    Required,
    Preferred,
    Optional,
    Never,
}

impl ContainerPolicy {
    pub const ALL: [ContainerPolicy; 4] = [
        ContainerPolicy::Required,
        ContainerPolicy::Preferred,
        ContainerPolicy::Optional,
        ContainerPolicy::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerPolicy::Required => "REQUIRED",
            ContainerPolicy::Preferred => "PREFERRED",
            ContainerPolicy::Optional => "OPTIONAL",
            ContainerPolicy::Never => "NEVER",
        }
    }

    /// Parses a policy, in any case.
    pub fn parse(text: &str) -> Option<ContainerPolicy> {
        let t = text.trim();
        ContainerPolicy::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(t))
    }
}

impl fmt::Display for ContainerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the two policies together ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combined {
    /// A container, or the job does not run here.
    Container,
    /// A container when one can be had, else the host.
    Preferred,
    /// No container.
    Host,
}

/// GlideinWMS's table; `Err` is the reason the two sides cannot agree.
pub fn combine(job: ContainerPolicy, pool: ContainerPolicy) -> Result<Combined, String> {
    use ContainerPolicy::*;
    Ok(match (job, pool) {
        (Never, Required) => {
            return Err(
                "the job says NEVER run in a container and the pool's CONTAINER_POLICY is \
                 REQUIRED"
                    .into(),
            )
        }
        (Required, Never) => {
            return Err(
                "the job requires a container and the pool's CONTAINER_POLICY is NEVER".into(),
            )
        }
        (Never, _) | (_, Never) => Combined::Host,
        (Required, _) | (_, Required) => Combined::Container,
        (Preferred, _) | (_, Preferred) => Combined::Preferred,
        (Optional, Optional) => Combined::Host,
    })
}

/// The pool's side, from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPolicy {
    /// `CONTAINER_POLICY` (default OPTIONAL).
    pub policy: ContainerPolicy,
    /// `CONTAINER_DEFAULT_IMAGE`: for jobs that get a container but name no image.
    pub default_image: Option<String>,
    /// `CONTAINER_IMAGE_ALLOW`: globs; empty allows every image.
    pub allow: Vec<String>,
    /// `CONTAINER_IMAGE_DENY`: globs; a match refuses the image whatever `allow` says.
    pub deny: Vec<String>,
}

impl Default for PoolPolicy {
    fn default() -> PoolPolicy {
        PoolPolicy {
            policy: ContainerPolicy::Optional,
            default_image: None,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

impl PoolPolicy {
    /// Why `image` may not run here, naming the pattern; `None` when it may.
    pub fn image_refusal(&self, image: &str) -> Option<String> {
        if let Some(p) = self.deny.iter().find(|p| glob_match(p, image)) {
            return Some(format!(
                "image '{image}' matches '{p}' in the pool's CONTAINER_IMAGE_DENY"
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|p| glob_match(p, image)) {
            return Some(format!(
                "image '{image}' matches none of the pool's CONTAINER_IMAGE_ALLOW ({})",
                self.allow.join(", ")
            ));
        }
        None
    }
}

/// Puts the pool's policy in the slot ad: `ContainerPolicy = "PREFERRED"` and, when set,
/// `ContainerDefaultImage`, so `petrel status -af` shows them and job expressions can
/// name them.
pub fn advertise(pool: &PoolPolicy, slot: &mut ClassAd) {
    use petrel_classad::Value;
    slot.insert_value(POLICY_ATTR, Value::string(pool.policy.as_str()));
    if let Some(image) = &pool.default_image {
        slot.insert_value(DEFAULT_IMAGE_ATTR, Value::string(image.as_str()));
    }
}

/// `*` matches any run of characters (slashes too), `?` one character; the rest matches
/// itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative with one backtrack point: the last `*` seen.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The job's side, read from its ad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContainer {
    pub policy: ContainerPolicy,
    /// Whether the job set `ContainerPolicy` itself.
    pub explicit: bool,
    /// The image as the submitter named it: `docker://…` for registry images, the
    /// submit-side path of an image that travels with the job.
    pub image: Option<String>,
}

impl JobContainer {
    pub fn from_ad(ad: &ClassAd) -> Result<JobContainer, String> {
        let image = image_reference(ad);
        let stated = ad.eval_attr(POLICY_ATTR);
        let (policy, explicit) = match stated.as_str() {
            Some(text) => match ContainerPolicy::parse(text) {
                Some(p) => (p, true),
                None => {
                    return Err(format!(
                        "the job's ContainerPolicy \"{text}\" is not REQUIRED, PREFERRED, \
                         OPTIONAL or NEVER"
                    ))
                }
            },
            None if image.is_some() => (ContainerPolicy::Required, false),
            None => (ContainerPolicy::Optional, false),
        };
        Ok(JobContainer {
            policy,
            explicit,
            image,
        })
    }
}

/// The image reference the allow and deny lists are checked against.
fn image_reference(ad: &ClassAd) -> Option<String> {
    let (name, docker) = match non_empty(ad, "ContainerImage") {
        Some(n) => (n, false),
        None => (non_empty(ad, "DockerImage")?, true),
    };
    if docker && !name.contains("://") {
        return Some(format!("docker://{name}"));
    }
    // condor_submit lists an image that travels with the job in TransferInput and keeps
    // only its base name in ContainerImage; the site's rules are about where it came from.
    if !name.contains('/') {
        let listed = ad.eval_attr("TransferInput");
        let entry = listed.as_str().and_then(|list| {
            list.split(',')
                .map(str::trim)
                .find(|e| e.trim_end_matches('/').rsplit('/').next() == Some(name.as_str()))
                .map(str::to_string)
        });
        if let Some(entry) = entry.filter(|e| !e.contains("://")) {
            if Path::new(&entry).is_absolute() {
                return Some(entry);
            }
            let iwd = ad.eval_attr("Iwd");
            let iwd = iwd.as_str().unwrap_or("/");
            return Some(format!("{}/{entry}", iwd.trim_end_matches('/')));
        }
    }
    Some(name)
}

fn non_empty(ad: &ClassAd, attr: &str) -> Option<String> {
    ad.eval_attr(attr)
        .as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Images a validation script failed on, refused until a time (Unix seconds).
#[derive(Debug, Clone, Default)]
pub struct Marks {
    marks: HashMap<String, Mark>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub until: i64,
    pub reason: String,
}

impl Marks {
    pub fn mark(&mut self, image: &str, until: i64, reason: &str) {
        self.marks.insert(
            image.to_string(),
            Mark {
                until,
                reason: reason.to_string(),
            },
        );
    }

    /// The mark on `image` still in force at `now`.
    pub fn active(&self, image: &str, now: i64) -> Option<&Mark> {
        self.marks.get(image).filter(|m| m.until > now)
    }

    /// Forgets marks that have run out.
    pub fn expire(&mut self, now: i64) {
        self.marks.retain(|_, m| m.until > now);
    }
}

/// Where the job runs, as the starter is told it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainerChoice {
    /// In the image the job's ad names (`reference` as [`JobContainer::image`]).
    #[default]
    JobImage,
    /// In the pool's default image.
    DefaultImage { image: String },
    /// On the host, as HTCondor's vanilla universe runs jobs.
    Host,
}

/// The outcome of [`decide`], with one line saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub choice: ContainerChoice,
    /// The image reference the container uses (for marks); `None` on the host.
    pub image: Option<String>,
    pub why: String,
}

/// Why a job does not run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    /// It runs out (an image marked by a failed validation): the job only waits.
    pub temporary: bool,
}

impl Refusal {
    fn lasting(reason: String) -> Refusal {
        Refusal {
            reason,
            temporary: false,
        }
    }
}

/// Combines the job's and the pool's side into where the job runs.
pub fn decide(
    job: &JobContainer,
    pool: &PoolPolicy,
    marks: &Marks,
    now: i64,
) -> Result<Decision, Refusal> {
    let sides = format!("job {}, pool {}", job.policy, pool.policy);
    let combined = combine(job.policy, pool.policy).map_err(Refusal::lasting)?;
    if combined == Combined::Host {
        return Ok(Decision {
            choice: ContainerChoice::Host,
            image: None,
            why: format!("runs on the host, without a container ({sides})"),
        });
    }
    let (image, choice) = match (&job.image, &pool.default_image) {
        (Some(own), _) => (own.clone(), ContainerChoice::JobImage),
        (None, Some(default)) => (
            default.clone(),
            ContainerChoice::DefaultImage {
                image: default.clone(),
            },
        ),
        (None, None) => {
            let why = "the job names no image and the pool has no CONTAINER_DEFAULT_IMAGE";
            return fallback_or_refuse(combined, &sides, why.into(), false);
        }
    };
    if let Some(why) = pool.image_refusal(&image) {
        return fallback_or_refuse(combined, &sides, why, false);
    }
    if let Some(mark) = marks.active(&image, now) {
        let why = format!(
            "a validation script failed in image '{image}' on this slot ({}); the slot \
             refuses that image for {} more seconds",
            mark.reason,
            mark.until - now
        );
        return fallback_or_refuse(combined, &sides, why, true);
    }
    let whose = match &choice {
        ContainerChoice::DefaultImage { .. } => "the pool's default image",
        _ => "the job's image",
    };
    Ok(Decision {
        choice,
        why: format!("runs in a container, {whose} '{image}' ({sides})"),
        image: Some(image),
    })
}

fn fallback_or_refuse(
    combined: Combined,
    sides: &str,
    why: String,
    temporary: bool,
) -> Result<Decision, Refusal> {
    if combined == Combined::Preferred {
        return Ok(Decision {
            choice: ContainerChoice::Host,
            image: None,
            why: format!("runs on the host: a container is only preferred ({sides}) and {why}"),
        });
    }
    Err(Refusal {
        reason: format!("the job needs a container ({sides}) but {why}"),
        temporary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerPolicy::*;

    #[test]
    fn the_whole_table() {
        let expect = |job, pool| combine(job, pool).ok();
        let c = Some(Combined::Container);
        let p = Some(Combined::Preferred);
        let h = Some(Combined::Host);
        let rows = [
            (Required, [c, c, c, None]),
            (Preferred, [c, p, p, h]),
            (Optional, [c, p, h, h]),
            (Never, [None, h, h, h]),
        ];
        for (job, outcomes) in rows {
            for (pool, want) in ContainerPolicy::ALL.into_iter().zip(outcomes) {
                assert_eq!(expect(job, pool), want, "job {job}, pool {pool}");
                // GlideinWMS's table is symmetric.
                assert_eq!(expect(pool, job), want, "job {pool}, pool {job}");
            }
        }
        assert!(combine(Never, Required).unwrap_err().contains("NEVER"));
        assert!(combine(Required, Never)
            .unwrap_err()
            .contains("CONTAINER_POLICY is NEVER"));
    }

    #[test]
    fn policies_parse_in_any_case() {
        assert_eq!(ContainerPolicy::parse(" preferred "), Some(Preferred));
        assert_eq!(ContainerPolicy::parse("NEVER"), Some(Never));
        assert_eq!(ContainerPolicy::parse("sometimes"), None);
        assert_eq!(Required.to_string(), "REQUIRED");
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "docker://localhost:5000/*",
            "docker://localhost:5000/a/b:1"
        ));
        assert!(!glob_match(
            "docker://localhost:5000/*",
            "docker://docker.io/busybox"
        ));
        assert!(glob_match(
            "/cvmfs/*",
            "/cvmfs/singularity.opensciencegrid.org/x"
        ));
        assert!(glob_match("*.sif", "/home/u/img.sif"));
        assert!(!glob_match("*.sif", "/home/u/img.sif.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a-b-x-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    fn ad(text: &str) -> ClassAd {
        ClassAd::parse(text).unwrap()
    }

    #[test]
    fn the_job_side_defaults_by_whether_it_names_an_image() {
        let vanilla = JobContainer::from_ad(&ad("[Cmd = \"/bin/true\"]")).unwrap();
        assert_eq!((vanilla.policy, vanilla.explicit), (Optional, false));
        assert_eq!(vanilla.image, None);
        let boxed = JobContainer::from_ad(&ad("[ContainerImage = \"docker://busybox\"]")).unwrap();
        assert_eq!(boxed.policy, Required);
        assert_eq!(boxed.image.as_deref(), Some("docker://busybox"));
        let told = JobContainer::from_ad(&ad(
            "[ContainerImage = \"/x.sif\"; ContainerPolicy = \"preferred\"]",
        ))
        .unwrap();
        assert_eq!((told.policy, told.explicit), (Preferred, true));
        let bad = JobContainer::from_ad(&ad("[ContainerPolicy = \"maybe\"]")).unwrap_err();
        assert!(bad.contains("\"maybe\""), "{bad}");
    }

    #[test]
    fn image_references_say_where_the_image_came_from() {
        let docker = JobContainer::from_ad(&ad(
            "[DockerImage = \"localhost:5000/app:1\"; WantDocker = true]",
        ))
        .unwrap();
        assert_eq!(
            docker.image.as_deref(),
            Some("docker://localhost:5000/app:1")
        );
        // A transferred image keeps only its base name in ContainerImage.
        let sent = JobContainer::from_ad(&ad(
            "[ContainerImage = \"img.sif\"; TransferInput = \"in.txt, sub/img.sif\"; \
              Iwd = \"/home/u/work\"]",
        ))
        .unwrap();
        assert_eq!(sent.image.as_deref(), Some("/home/u/work/sub/img.sif"));
        let dir = JobContainer::from_ad(&ad(
            "[ContainerImage = \"rootfs\"; TransferInput = \"/data/rootfs/\"]",
        ))
        .unwrap();
        assert_eq!(dir.image.as_deref(), Some("/data/rootfs/"));
    }

    fn job(policy: ContainerPolicy, image: Option<&str>) -> JobContainer {
        JobContainer {
            policy,
            explicit: true,
            image: image.map(str::to_string),
        }
    }

    fn pool(policy: ContainerPolicy, default: Option<&str>) -> PoolPolicy {
        PoolPolicy {
            policy,
            default_image: default.map(str::to_string),
            ..PoolPolicy::default()
        }
    }

    fn run(j: &JobContainer, p: &PoolPolicy) -> Result<Decision, Refusal> {
        decide(j, p, &Marks::default(), 1000)
    }

    #[test]
    fn every_combination_decides_where_the_job_runs() {
        let img = Some("docker://site/app");
        for job_policy in ContainerPolicy::ALL {
            for pool_policy in ContainerPolicy::ALL {
                for (job_image, default) in [(img, None), (None, img), (None, None)] {
                    let d = run(&job(job_policy, job_image), &pool(pool_policy, default));
                    let label =
                        format!("job {job_policy} {job_image:?}, pool {pool_policy} {default:?}");
                    let has_image = job_image.is_some() || default.is_some();
                    match combine(job_policy, pool_policy) {
                        Err(why) => assert_eq!(d.unwrap_err().reason, why, "{label}"),
                        Ok(Combined::Host) => {
                            assert_eq!(d.unwrap().choice, ContainerChoice::Host, "{label}")
                        }
                        Ok(Combined::Container) if !has_image => {
                            let r = d.unwrap_err();
                            assert!(r.reason.contains("no CONTAINER_DEFAULT_IMAGE"), "{label}");
                            assert!(!r.temporary);
                        }
                        Ok(Combined::Preferred) if !has_image => {
                            assert_eq!(d.unwrap().choice, ContainerChoice::Host, "{label}")
                        }
                        Ok(_) => {
                            let d = d.unwrap();
                            assert_eq!(d.image.as_deref(), img, "{label}");
                            let want = match job_image {
                                Some(_) => ContainerChoice::JobImage,
                                None => ContainerChoice::DefaultImage {
                                    image: "docker://site/app".into(),
                                },
                            };
                            assert_eq!(d.choice, want, "{label}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_default_image_serves_only_jobs_without_one() {
        let p = pool(Preferred, Some("/cvmfs/el9"));
        let d = run(&job(Optional, None), &p).unwrap();
        assert_eq!(
            d.choice,
            ContainerChoice::DefaultImage {
                image: "/cvmfs/el9".into()
            }
        );
        assert!(d.why.contains("default image '/cvmfs/el9'"), "{}", d.why);
        let d = run(&job(Required, Some("/mine.sif")), &p).unwrap();
        assert_eq!(d.choice, ContainerChoice::JobImage);
        assert_eq!(d.image.as_deref(), Some("/mine.sif"));
    }

    #[test]
    fn deny_wins_and_an_empty_allow_list_allows_all() {
        let mut p = pool(Optional, None);
        assert_eq!(p.image_refusal("docker://anything"), None);
        p.allow = vec!["docker://localhost:5000/*".into(), "/cvmfs/*".into()];
        p.deny = vec!["*/bad/*".into()];
        assert_eq!(p.image_refusal("/cvmfs/el9"), None);
        let other = p.image_refusal("docker://docker.io/busybox").unwrap();
        assert!(other.contains("CONTAINER_IMAGE_ALLOW"), "{other}");
        let denied = p.image_refusal("/cvmfs/bad/x").unwrap();
        assert!(
            denied.contains("'*/bad/*'") && denied.contains("CONTAINER_IMAGE_DENY"),
            "{denied}"
        );
        let r = run(&job(Required, Some("/cvmfs/bad/x")), &p).unwrap_err();
        assert!(r.reason.contains("'*/bad/*'"), "{}", r.reason);
        // A preferred container falls back to the host.
        let d = run(&job(Preferred, Some("/cvmfs/bad/x")), &p).unwrap();
        assert_eq!(d.choice, ContainerChoice::Host);
        assert!(d.why.contains("only preferred"), "{}", d.why);
        // The pool's own default image is held to the same lists.
        p.default_image = Some("docker://docker.io/busybox".into());
        p.policy = Required;
        let r = run(&job(Optional, None), &p).unwrap_err();
        assert!(r.reason.contains("CONTAINER_IMAGE_ALLOW"), "{}", r.reason);
    }

    #[test]
    fn a_marked_image_is_refused_until_the_mark_runs_out() {
        let mut marks = Marks::default();
        marks.mark("/img.sif", 1600, "check-gpu.sh exited 1: no GPU");
        let p = pool(Optional, None);
        let j = job(Required, Some("/img.sif"));
        let r = decide(&j, &p, &marks, 1000).unwrap_err();
        assert!(r.temporary);
        assert!(
            r.reason.contains("check-gpu.sh") && r.reason.contains("600 more seconds"),
            "{}",
            r.reason
        );
        assert!(decide(&j, &p, &marks, 1600).is_ok());
        let other = job(Required, Some("/other.sif"));
        assert!(decide(&other, &p, &marks, 1000).is_ok());
        marks.expire(1600);
        assert!(marks.active("/img.sif", 0).is_none());
    }
}
