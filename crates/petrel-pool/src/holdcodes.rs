//! HTCondor's hold reason codes (`condor_holdcodes.h`), the ones petrel gives.
//!
//! A hold is the job's fault and waits for the user (`petrel release`); a failure that
//! blames the slot instead sends the job back to idle, which HTCondor marks with a
//! vacate code (≥ 1000, reported as a negative subcode in some places).

use serde::{Deserialize, Serialize};

pub const USER_REQUEST: i64 = 1;
pub const JOB_POLICY: i64 = 3;
pub const JOB_POLICY_UNDEFINED: i64 = 5;
pub const FAILED_TO_CREATE_PROCESS: i64 = 6;
pub const UNABLE_TO_OPEN_OUTPUT: i64 = 7;
pub const UNABLE_TO_OPEN_INPUT: i64 = 8;
pub const TRANSFER_OUTPUT_ERROR: i64 = 12;
pub const TRANSFER_INPUT_ERROR: i64 = 13;
pub const IWD_ERROR: i64 = 14;
pub const SUBMITTED_ON_HOLD: i64 = 15;
pub const JOB_OUT_OF_RESOURCES: i64 = 34;
pub const INVALID_DOCKER_IMAGE: i64 = 35;
pub const SINGULARITY_TEST_FAILED: i64 = 45;

/// Subcodes of [`JOB_OUT_OF_RESOURCES`].
pub const SUBCODE_MEMORY: i64 = 102;
pub const SUBCODE_DISK: i64 = 104;

/// Why a job is held: `HoldReason`, `HoldReasonCode`, `HoldReasonSubCode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: String,
    pub code: i64,
    pub subcode: i64,
}

/// The longest `HoldReason` in characters. Reasons quote what the user wrote (an image
/// name, a file name, a `periodic_hold_reason` expression's value), which can be huge; the
/// start and the end of a longer one are kept.
pub const MAX_REASON_CHARS: usize = 2048;

impl Hold {
    pub fn new(code: i64, subcode: i64, reason: impl Into<String>) -> Hold {
        let reason = reason.into();
        let reason = if reason.len() > MAX_REASON_CHARS {
            petrel_classad::excerpt(&reason, MAX_REASON_CHARS)
        } else {
            reason
        };
        Hold {
            reason,
            code,
            subcode,
        }
    }

    /// The out-of-memory hold, with the limit and the peak stated as HTCondor does.
    pub fn out_of_memory(limit_mib: u64, peak_mib: u64) -> Hold {
        Hold::new(
            JOB_OUT_OF_RESOURCES,
            SUBCODE_MEMORY,
            format!(
                "Job has gone over cgroup memory limit of {limit_mib} megabytes. Peak usage: \
                 {peak_mib} megabytes.  Consider resubmitting with a higher request_memory."
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_reasons_quote_huge_input_only_in_part() {
        let name = "x".repeat(500_000);
        let h = Hold::new(
            INVALID_DOCKER_IMAGE,
            0,
            format!("invalid image name '{name}': bad"),
        );
        assert!(
            h.reason.len() < MAX_REASON_CHARS + 100,
            "{}",
            h.reason.len()
        );
        assert!(h.reason.starts_with("invalid image name 'xxx"));
        assert!(h.reason.ends_with("': bad"));
        assert_eq!(Hold::new(1, 0, "short").reason, "short");
    }
}
