//! Capabilities: the job gets none, unless a root caller keeps some with `--cap-add`.

use ::caps::{CapSet, Capability, CapsHashSet};

use crate::error::{RuntimeError, StepError};

/// Parses capability names as users write them: `CAP_NET_RAW`, `net_raw`, `NET_RAW`.
pub(crate) fn parse(names: &[String]) -> Result<CapsHashSet, RuntimeError> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            full.parse::<Capability>().map_err(|_| {
                RuntimeError::InvalidSpec(format!(
                    "unknown capability '{name}' (expected a name such as CAP_NET_RAW)"
                ))
            })
        })
        .collect()
}

/// Step one, while the process still holds every capability of its user namespace: empty
/// the bounding and ambient sets except for `keep`, so nothing can be regained later.
pub(crate) fn drop_bounding(keep: &CapsHashSet) -> Result<(), StepError> {
    for cap in ::caps::all() {
        if !keep.contains(&cap) {
            ::caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                StepError::step(format!("dropping {cap} from the bounding set: {e}"))
            })?;
        }
    }
    ::caps::clear(None, CapSet::Ambient)
        .map_err(|e| StepError::step(format!("clearing the ambient capabilities: {e}")))
}

/// Step two, after the uid change: leave exactly `keep` in the effective, permitted and
/// inheritable sets, and in the ambient set so a non-root job keeps them across `execve`.
pub(crate) fn set_final(keep: &CapsHashSet) -> Result<(), StepError> {
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        ::caps::set(None, set, keep)
            .map_err(|e| StepError::step(format!("setting the {set:?} capabilities: {e}")))?;
    }
    for cap in keep {
        ::caps::raise(None, CapSet::Ambient, *cap)
            .map_err(|e| StepError::step(format!("raising ambient {cap}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let set = parse(&["net_raw".into(), "CAP_CHOWN".into(), "Sys_Time".into()]).unwrap();
        assert!(set.contains(&Capability::CAP_NET_RAW));
        assert!(set.contains(&Capability::CAP_CHOWN));
        assert!(set.contains(&Capability::CAP_SYS_TIME));
        let err = parse(&["CAP_FLY".into()]).unwrap_err().to_string();
        assert!(err.contains("CAP_FLY"), "{err}");
    }
}
