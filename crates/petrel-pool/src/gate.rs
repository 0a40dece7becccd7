//! What each user's clients hold of the daemon: connections and the bytes of messages
//! still arriving. Every local user may connect to root's pool, so one user must not be
//! able to use up its file descriptors, threads or memory and leave the others without
//! a daemon. Root and the daemon's own user are trusted and not counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::ClientLimits;
use crate::error::PoolError;

#[derive(Default, Clone, Copy)]
struct Held {
    connections: usize,
    bytes: usize,
}

pub struct Gate {
    limits: ClientLimits,
    /// The daemon's own uid (not counted, as root is not).
    own: u32,
    held: Mutex<HashMap<u32, Held>>,
}

/// A connection let in; counted until dropped.
pub struct Admitted {
    gate: Arc<Gate>,
    uid: Option<u32>,
}

/// Bytes of a message being read; counted until dropped.
pub struct Reserved {
    gate: Arc<Gate>,
    uid: Option<u32>,
    bytes: usize,
}

impl Gate {
    pub fn new(limits: ClientLimits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            own: rustix::process::getuid().as_raw(),
            held: Mutex::new(HashMap::new()),
        })
    }

    fn counted(&self, uid: u32) -> Option<u32> {
        (uid != 0 && uid != self.own).then_some(uid)
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<u32, Held>) -> T) -> T {
        f(&mut self.held.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Lets a connection from `uid` in, or says why not.
    pub fn admit(self: &Arc<Gate>, uid: u32) -> Result<Admitted, PoolError> {
        let counted = self.counted(uid);
        if let Some(uid) = counted {
            let max = self.limits.connections_per_user;
            self.with(|held| {
                let h = held.entry(uid).or_default();
                if h.connections >= max {
                    return Err(PoolError::Refused(format!(
                        "uid {uid} already has {max} connections to the pool, its limit \
                         (MAX_CONNECTIONS_PER_USER); close some and try again"
                    )));
                }
                h.connections += 1;
                Ok(())
            })?;
        }
        Ok(Admitted {
            gate: self.clone(),
            uid: counted,
        })
    }

    /// Counts `bytes` of a message from `uid` against the user's budget, or says why not.
    pub fn reserve(self: &Arc<Gate>, uid: u32, bytes: usize) -> Result<Reserved, PoolError> {
        let counted = self.counted(uid);
        if let Some(uid) = counted {
            let max = self.limits.memory_per_user;
            self.with(|held| {
                let h = held.entry(uid).or_default();
                if h.bytes.saturating_add(bytes) > max {
                    return Err(PoolError::Refused(format!(
                        "a message of {bytes} bytes would take uid {uid} past the {} MiB \
                         its unfinished messages may hold (MAX_CLIENT_MEMORY_PER_USER)",
                        max >> 20
                    )));
                }
                h.bytes += bytes;
                Ok(())
            })?;
        }
        Ok(Reserved {
            gate: self.clone(),
            uid: counted,
            bytes,
        })
    }

    fn release(&self, uid: u32, connections: usize, bytes: usize) {
        self.with(|held| {
            if let Some(h) = held.get_mut(&uid) {
                h.connections = h.connections.saturating_sub(connections);
                h.bytes = h.bytes.saturating_sub(bytes);
                if h.connections == 0 && h.bytes == 0 {
                    held.remove(&uid);
                }
            }
        });
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(uid) = self.uid {
            self.gate.release(uid, 1, 0);
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(uid) = self.uid {
            self.gate.release(uid, 0, self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_is_held_to_their_own_limits() {
        let gate = Gate::new(ClientLimits {
            connections_per_user: 2,
            memory_per_user: 1 << 20,
            ..ClientLimits::default()
        });
        let (a, b) = (4_000_001, 4_000_002);
        let one = gate.admit(a).unwrap();
        let two = gate.admit(a).unwrap();
        let e = gate.admit(a).err().unwrap().to_string();
        assert!(e.contains("MAX_CONNECTIONS_PER_USER"), "{e}");
        // Another user, and root, are not held back by the first.
        let _other = gate.admit(b).unwrap();
        let _root: Vec<_> = (0..10).map(|_| gate.admit(0).unwrap()).collect();
        drop(one);
        let _three = gate.admit(a).unwrap();
        drop(two);

        let r = gate.reserve(a, 700 << 10).unwrap();
        let e = gate.reserve(a, 400 << 10).err().unwrap().to_string();
        assert!(e.contains("MAX_CLIENT_MEMORY_PER_USER"), "{e}");
        let _b = gate.reserve(b, 1 << 20).unwrap();
        let _root = gate.reserve(0, 64 << 20).unwrap();
        drop(r);
        let _again = gate.reserve(a, 1 << 20).unwrap();
    }
}
