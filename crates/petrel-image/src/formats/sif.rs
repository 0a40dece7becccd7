//! SIF (Singularity Image Format) files, read without Apptainer.
//!
//! Layout (little-endian, no padding), per sylabs/sif `pkg/sif`:
//! a 128-byte global header — launch script `[32]`, magic `"SIF_MAGIC\0"` `[10]`,
//! version `[3]`, arch `[3]`, uuid `[16]`, then i64s: created, modified,
//! descriptors free, descriptors total, descriptors offset, descriptors size, data
//! offset, data size — and a table of 585-byte descriptors: data type i32, used u8,
//! id u32, group id u32, linked id u32, offset i64, size i64, size with padding i64,
//! created i64, modified i64, uid i64, gid i64, name `[128]`, extra `[384]`. A
//! partition descriptor (type `0x4004`) has in `extra`: fs type i32 (1 = squashfs),
//! partition type i32 (2 = primary system), arch `[3]`.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Size of the global header.
pub const HEADER_LEN: usize = 128;
/// Size of one descriptor.
pub const DESCRIPTOR_LEN: usize = 585;
/// The magic at offset 32.
pub const MAGIC: &[u8; 10] = b"SIF_MAGIC\0";
/// Data type of a file-system partition.
pub const DATA_PARTITION: i32 = 0x4004;
/// Squashfs file-system type.
pub const FS_SQUASH: i32 = 1;
/// Partition type "system".
pub const PART_SYSTEM: i32 = 1;
/// Partition type "primary system".
pub const PART_PRIMSYS: i32 = 2;

/// A partition found in a SIF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Byte offset of the data in the file.
    pub offset: u64,
    /// Size of the data.
    pub size: u64,
    /// File-system type.
    pub fs_type: i32,
    /// Partition type.
    pub part_type: i32,
    /// SIF arch code (`"02"` = amd64).
    pub arch: String,
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(x)
}

fn le_i32(b: &[u8], at: usize) -> i32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    i32::from_le_bytes(x)
}

/// Finds the primary squashfs root partition of the SIF file at `path`.
pub fn find_root_partition(path: &Path) -> Result<Partition> {
    let mut f = std::fs::File::open(path).ctx("open", path)?;
    let file_len = f.metadata().ctx("stat", path)?.len();
    read_root_partition(&mut f, file_len, &format!("SIF file {}", path.display()))
}

/// [`find_root_partition`] of a SIF image of `file_len` bytes read from `f`; `what`
/// names it in errors.
pub fn read_root_partition(
    f: &mut (impl Read + Seek),
    file_len: u64,
    what: &str,
) -> Result<Partition> {
    let bad = |reason: String| Error::format(what, reason);
    let mut h = [0u8; HEADER_LEN];
    f.read_exact(&mut h)
        .map_err(|e| bad(format!("reading header: {e}")))?;
    if &h[32..42] != MAGIC {
        return Err(bad("no SIF_MAGIC".into()));
    }
    let total = le_i64(&h, 88);
    let d_off = le_i64(&h, 96);
    let d_size = le_i64(&h, 104);
    if !(0..=4096).contains(&total) || d_off < HEADER_LEN as i64 || d_size < 0 {
        return Err(bad(format!(
            "implausible descriptor table ({total} descriptors at {d_off})"
        )));
    }
    let needed = total as u64 * DESCRIPTOR_LEN as u64;
    if (d_size as u64) < needed || d_off as u64 + needed > file_len {
        return Err(bad("descriptor table runs past the end of the file".into()));
    }
    f.seek(SeekFrom::Start(d_off as u64))
        .map_err(|e| bad(format!("seeking to the descriptors: {e}")))?;
    let mut table = vec![0u8; needed as usize];
    f.read_exact(&mut table)
        .map_err(|e| bad(format!("reading descriptors: {e}")))?;
    let mut found: Vec<Partition> = Vec::new();
    for d in table.chunks_exact(DESCRIPTOR_LEN) {
        let used = d[4] != 0;
        if !used || le_i32(d, 0) != DATA_PARTITION {
            continue;
        }
        let offset = le_i64(d, 17);
        let size = le_i64(d, 25);
        if offset < 0 || size <= 0 || offset as u64 + size as u64 > file_len {
            return Err(bad(format!(
                "partition at {offset} of {size} bytes lies outside the file"
            )));
        }
        let extra = &d[201..];
        found.push(Partition {
            offset: offset as u64,
            size: size as u64,
            fs_type: le_i32(extra, 0),
            part_type: le_i32(extra, 4),
            arch: String::from_utf8_lossy(&extra[8..10]).into_owned(),
        });
    }
    let pick = found
        .iter()
        .find(|p| p.fs_type == FS_SQUASH && p.part_type == PART_PRIMSYS)
        .or_else(|| {
            found
                .iter()
                .find(|p| p.fs_type == FS_SQUASH && p.part_type == PART_SYSTEM)
        })
        .cloned();
    match pick {
        Some(p) => Ok(p),
        None if found.iter().any(|p| p.fs_type == 5) => Err(bad(
            "the root partition is encrypted squashfs, which petrel cannot open".into(),
        )),
        None => Err(bad(format!(
            "no squashfs system partition among {} partitions",
            found.len()
        ))),
    }
}
