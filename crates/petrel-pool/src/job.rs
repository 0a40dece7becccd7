//! Job identities and HTCondor's job states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `ClusterId.ProcId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId {
    pub cluster: i64,
    pub proc: i64,
}

impl JobId {
    pub fn new(cluster: i64, proc: i64) -> JobId {
        JobId { cluster, proc }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.cluster, self.proc)
    }
}

/// What a command names: one job (`12.3`) or a whole cluster (`12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobSelector {
    Cluster(i64),
    Job(JobId),
}

impl JobSelector {
    pub fn covers(&self, id: JobId) -> bool {
        match *self {
            JobSelector::Cluster(c) => id.cluster == c,
            JobSelector::Job(j) => j == id,
        }
    }
}

impl FromStr for JobSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("'{s}' is not a job id: expected CLUSTER or CLUSTER.PROC, e.g. 12 or 12.3");
        let (c, p) = match s.split_once('.') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let cluster: i64 = c.parse().map_err(|_| bad())?;
        if cluster < 1 {
            return Err(bad());
        }
        match p {
            None => Ok(JobSelector::Cluster(cluster)),
            Some(p) => {
                let proc: i64 = p.parse().map_err(|_| bad())?;
                if proc < 0 {
                    return Err(bad());
                }
                Ok(JobSelector::Job(JobId { cluster, proc }))
            }
        }
    }
}

/// `JobStatus`, with HTCondor's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    Idle = 1,
    Running = 2,
    Removed = 3,
    Completed = 4,
    Held = 5,
    TransferringOutput = 6,
    Suspended = 7,
}

impl JobStatus {
    pub fn from_code(code: i64) -> Option<JobStatus> {
        Some(match code {
            1 => JobStatus::Idle,
            2 => JobStatus::Running,
            3 => JobStatus::Removed,
            4 => JobStatus::Completed,
            5 => JobStatus::Held,
            6 => JobStatus::TransferringOutput,
            7 => JobStatus::Suspended,
            _ => return None,
        })
    }

    pub fn code(self) -> i64 {
        self as i64
    }

    /// The one-letter state `condor_q -nobatch` prints.
    pub fn letter(self) -> char {
        match self {
            JobStatus::Idle => 'I',
            JobStatus::Running => 'R',
            JobStatus::Removed => 'X',
            JobStatus::Completed => 'C',
            JobStatus::Held => 'H',
            JobStatus::TransferringOutput => '>',
            JobStatus::Suspended => 'S',
        }
    }

    /// Whether the job has a starter (it occupies a slot).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Running | JobStatus::TransferringOutput | JobStatus::Suspended
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!("12".parse(), Ok(JobSelector::Cluster(12)));
        assert_eq!("12.3".parse(), Ok(JobSelector::Job(JobId::new(12, 3))));
        for bad in ["", "x", "1.x", "0", "-1", "1.-2", "1.2.3"] {
            assert!(bad.parse::<JobSelector>().is_err(), "{bad}");
        }
        assert!(JobSelector::Cluster(4).covers(JobId::new(4, 9)));
        assert!(!JobSelector::Job(JobId::new(4, 1)).covers(JobId::new(4, 9)));
    }
}
