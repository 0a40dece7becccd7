//! The machine as one partitionable slot, carved into a dynamic slot per running job.

use std::collections::BTreeMap;

use petrel_classad::{ClassAd, Value};

use crate::config::PoolConfig;
use crate::job::JobId;

/// Cpus, memory (MiB) and disk (KiB), as HTCondor counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_kib: u64,
}

impl Resources {
    pub fn fits_in(&self, other: &Resources) -> bool {
        self.cpus <= other.cpus
            && self.memory_mib <= other.memory_mib
            && self.disk_kib <= other.disk_kib
    }
}

pub struct Machine {
    pub hostname: String,
    pub total: Resources,
    pub free: Resources,
    /// The partitionable slot's ad without its resource counts.
    base: ClassAd,
    /// Dynamic slots: name → (job, resources).
    pub dynamic: BTreeMap<String, (JobId, Resources)>,
    next_dynamic: u64,
    /// The attributes the last runtime probes put in `base`, to replace on the next.
    runtime_attr_names: Vec<String>,
    /// The configured extra attributes, which win over the probes' (a site may pin one).
    configured: Vec<(String, String)>,
}

impl Machine {
    /// The slot for this machine with the configured extra attributes; what the container
    /// runtimes' probes find comes later ([`Machine::set_runtime_attrs`]).
    pub fn new(config: &PoolConfig) -> Machine {
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let total = Resources {
            cpus: config.cpus,
            memory_mib: config.memory_mib,
            disk_kib: config.disk_kib,
        };
        let mut base = ClassAd::new();
        let s = |ad: &mut ClassAd, k: &str, v: &str| ad.insert_value(k, Value::string(v));
        s(&mut base, "MyType", "Machine");
        s(&mut base, "Name", &format!("slot1@{hostname}"));
        s(&mut base, "Machine", &hostname);
        s(&mut base, "SlotType", "Partitionable");
        base.insert_value("PartitionableSlot", true);
        base.insert_value("SlotID", 1i64);
        s(&mut base, "OpSys", "LINUX");
        s(&mut base, "Arch", arch());
        s(&mut base, "FileSystemDomain", &hostname);
        s(&mut base, "UidDomain", &hostname);
        base.insert_value("HasFileTransfer", true);
        crate::policy::advertise(&config.container, &mut base);
        base.insert_value("Start", true);
        base.insert_value("Rank", 0i64);
        base.insert_value("TotalCpus", i64::from(total.cpus));
        base.insert_value("TotalMemory", total.memory_mib as i64);
        base.insert_value("TotalDisk", total.disk_kib as i64);
        base.insert_value("TotalSlotCpus", i64::from(total.cpus));
        base.insert_value("TotalSlotMemory", total.memory_mib as i64);
        base.insert_value("TotalSlotDisk", total.disk_kib as i64);
        s(
            &mut base,
            "CondorVersion",
            &format!("$CondorVersion: petrel {} $", env!("CARGO_PKG_VERSION")),
        );
        base.insert_expr_str("Requirements", "START").ok();
        base.insert_expr_str("START", "true").ok();
        let mut machine = Machine {
            hostname,
            total,
            free: total,
            base,
            dynamic: BTreeMap::new(),
            next_dynamic: 1,
            runtime_attr_names: Vec::new(),
            configured: config.slot_attrs.clone(),
        };
        machine.set_runtime_attrs(&[]);
        machine
    }

    /// Advertises what the container runtimes' probes found now, in place of what they
    /// found before.
    pub fn set_runtime_attrs(&mut self, runtime_attrs: &[(String, String)]) {
        for name in self.runtime_attr_names.drain(..) {
            self.base.remove(&name);
        }
        for (k, v) in runtime_attrs.iter().chain(&self.configured) {
            if self.base.insert_expr_str(k, v).is_err() {
                tracing::warn!("slot attribute {k} = {v} is not a ClassAd expression; left out");
            } else {
                self.runtime_attr_names.push(k.clone());
            }
        }
    }

    /// The partitionable slot's ad with `resources` as what it offers.
    pub fn slot_ad(&self, resources: Resources) -> ClassAd {
        let mut ad = self.base.clone();
        ad.insert_value("Cpus", i64::from(resources.cpus));
        ad.insert_value("Memory", resources.memory_mib as i64);
        ad.insert_value("Disk", resources.disk_kib as i64);
        ad.insert_value("NumDynamicSlots", self.dynamic.len() as i64);
        ad.insert_value("ChildCount", self.dynamic.len() as i64);
        ad
    }

    /// The ad of what is free now (what the negotiator matches against).
    pub fn free_ad(&self) -> ClassAd {
        self.slot_ad(self.free)
    }

    /// Carves a dynamic slot for `job`.
    pub fn claim(&mut self, job: JobId, want: Resources) -> Option<String> {
        if !want.fits_in(&self.free) {
            return None;
        }
        self.free.cpus -= want.cpus;
        self.free.memory_mib -= want.memory_mib;
        self.free.disk_kib -= want.disk_kib;
        let name = format!("slot1_{}", self.next_dynamic);
        self.next_dynamic += 1;
        self.dynamic.insert(name.clone(), (job, want));
        Some(name)
    }

    /// Re-takes a claim that a restart found still running (the slot name is kept).
    pub fn reclaim(&mut self, name: &str, job: JobId, want: Resources) {
        self.free.cpus = self.free.cpus.saturating_sub(want.cpus);
        self.free.memory_mib = self.free.memory_mib.saturating_sub(want.memory_mib);
        self.free.disk_kib = self.free.disk_kib.saturating_sub(want.disk_kib);
        if let Some(n) = name
            .strip_prefix("slot1_")
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.next_dynamic = self.next_dynamic.max(n + 1);
        }
        self.dynamic.insert(name.to_string(), (job, want));
    }

    pub fn release(&mut self, name: &str) {
        if let Some((_, r)) = self.dynamic.remove(name) {
            self.free.cpus = (self.free.cpus + r.cpus).min(self.total.cpus);
            self.free.memory_mib = (self.free.memory_mib + r.memory_mib).min(self.total.memory_mib);
            self.free.disk_kib = (self.free.disk_kib + r.disk_kib).min(self.total.disk_kib);
        }
    }

    /// The dynamic slot's ad, as `petrel status` shows it and the starter receives it.
    pub fn dynamic_ad(&self, name: &str) -> Option<ClassAd> {
        let (job, r) = self.dynamic.get(name)?;
        let mut ad = self.slot_ad(*r);
        ad.insert_value("Name", Value::string(format!("{name}@{}", self.hostname)));
        ad.insert_value("SlotType", Value::string("Dynamic"));
        ad.insert_value("PartitionableSlot", false);
        ad.insert_value("DynamicSlot", true);
        ad.insert_value("State", Value::string("Claimed"));
        ad.insert_value("Activity", Value::string("Busy"));
        ad.insert_value("JobId", Value::string(job.to_string()));
        Some(ad)
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X86_64",
        "aarch64" => "aarch64",
        "x86" => "INTEL",
        other => other,
    }
}
