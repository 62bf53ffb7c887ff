//! What the disk would still hold after losing power: per file, its length at its last sync and the
//! old bytes of every region below that length overwritten (or truncated away) since. A file with no
//! entry here has nothing unsynced.
//!
//! Appends cost nothing to track (they lie past the durable length, and a crash truncates them);
//! an overwrite of durable bytes saves those bytes once, the first time, so the cost is bounded by
//! what was overwritten, never a copy of the file.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// The unsynced state of every file that has some, by inode number.
#[derive(Debug, Default)]
pub struct Tracker {
    files: HashMap<u64, Dirty>,
}

#[derive(Debug)]
struct Dirty {
    /// An open descriptor of the file (read-write), so that a crash can revert it wherever it has
    /// been renamed to.
    file: Arc<File>,
    /// The file's length at its last sync (or when tracking began: a file nobody wrote through
    /// the filesystem yet is durable as it is).
    durable_len: u64,
    /// start -> the durable bytes of `[start, start + len)`: non-overlapping, all below
    /// `durable_len`, recorded before the first change to each region since the last sync.
    saved: BTreeMap<u64, Vec<u8>>,
}

/// What a crash discarded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CrashReport {
    /// Files that had unsynced changes.
    pub files: usize,
    /// Bytes past the durable lengths, cut off.
    pub bytes_truncated: u64,
    /// Durable bytes that had been overwritten or truncated away, written back.
    pub bytes_restored: u64,
}

impl Tracker {
    /// `file` (inode `ino`) was just created, empty: until it is synced, a crash empties it.
    pub fn created(&mut self, ino: u64, file: &Arc<File>) {
        self.files.insert(
            ino,
            Dirty {
                file: file.clone(),
                durable_len: 0,
                saved: BTreeMap::new(),
            },
        );
    }

    /// Call before writing `len` bytes at `offset`.
    pub fn before_write(
        &mut self,
        ino: u64,
        file: &Arc<File>,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.entry(ino, file)?
            .save(offset, offset.saturating_add(len))
    }

    /// Call before changing the file's length to `new_len`.
    pub fn before_set_len(&mut self, ino: u64, file: &Arc<File>, new_len: u64) -> io::Result<()> {
        let dirty = self.entry(ino, file)?;
        let durable_len = dirty.durable_len;
        dirty.save(new_len, durable_len)
    }

    /// The file was synced (fsync or fdatasync): everything it holds now is durable.
    pub fn synced(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// The file no longer exists (its last link was removed): there is nothing to revert.
    pub fn forget(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// How many files have unsynced changes.
    pub fn dirty_files(&self) -> usize {
        self.files.len()
    }

    /// Reverts every file to its state at its last sync; returns what was discarded and the inodes
    /// whose contents changed.
    pub fn crash(&mut self) -> io::Result<(CrashReport, Vec<u64>)> {
        let mut report = CrashReport::default();
        let mut inos = Vec::with_capacity(self.files.len());
        for (ino, dirty) in self.files.drain() {
            let len = dirty.file.metadata()?.len();
            report.files += 1;
            report.bytes_truncated += len.saturating_sub(dirty.durable_len);
            dirty.file.set_len(dirty.durable_len)?;
            for (start, bytes) in &dirty.saved {
                dirty.file.write_all_at(bytes, *start)?;
                report.bytes_restored += bytes.len() as u64;
            }
            inos.push(ino);
        }
        Ok((report, inos))
    }

    fn entry(&mut self, ino: u64, file: &Arc<File>) -> io::Result<&mut Dirty> {
        use std::collections::hash_map::Entry;
        Ok(match self.files.entry(ino) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let durable_len = file.metadata()?.len();
                v.insert(Dirty {
                    file: file.clone(),
                    durable_len,
                    saved: BTreeMap::new(),
                })
            }
        })
    }
}

impl Dirty {
    /// Saves the durable bytes of `[start, end)` (clipped to the durable length) not saved yet.
    fn save(&mut self, start: u64, end: u64) -> io::Result<()> {
        let end = end.min(self.durable_len);
        if start >= end {
            return Ok(());
        }
        let mut gaps = Vec::new();
        let mut pos = start;
        if let Some((&s, bytes)) = self.saved.range(..start).next_back() {
            pos = pos.max(s + bytes.len() as u64);
        }
        for (&s, bytes) in self.saved.range(start..end) {
            if s > pos {
                gaps.push((pos, s));
            }
            pos = pos.max(s + bytes.len() as u64);
        }
        if pos < end {
            gaps.push((pos, end));
        }
        for (s, e) in gaps {
            let mut bytes = vec![0; (e - s) as usize];
            read_up_to(&self.file, &mut bytes, s)?;
            self.saved.insert(s, bytes);
        }
        Ok(())
    }
}

/// Reads what there is at `offset` into `buf`; past the end of the file `buf` keeps its zeros
/// (only a change made behind the filesystem's back can make a durable region shorter).
fn read_up_to(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn open(path: &std::path::Path) -> Arc<File> {
        Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .unwrap(),
        )
    }

    /// Random writes, truncations, syncs and crashes on a real file, against a model that keeps
    /// the current contents and the contents at the last sync.
    #[test]
    fn crashes_revert_to_the_last_sync() {
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..200 {
            let path = dir.path().join(format!("f{seed}"));
            let file = open(&path);
            let mut tracker = Tracker::default();
            tracker.created(7, &file);
            let (mut current, mut durable) = (Vec::<u8>::new(), Vec::<u8>::new());
            let mut rng = StdRng::seed_from_u64(seed);
            for _ in 0..200 {
                match rng.gen_range(0..10) {
                    0..=5 => {
                        let offset = rng.gen_range(0..=current.len() + 8);
                        let data: Vec<u8> = (0..rng.gen_range(1..24)).map(|_| rng.gen()).collect();
                        tracker
                            .before_write(7, &file, offset as u64, data.len() as u64)
                            .unwrap();
                        file.write_all_at(&data, offset as u64).unwrap();
                        if current.len() < offset + data.len() {
                            current.resize(offset + data.len(), 0);
                        }
                        current[offset..offset + data.len()].copy_from_slice(&data);
                    }
                    6 => {
                        let len = rng.gen_range(0..=current.len() + 8);
                        tracker.before_set_len(7, &file, len as u64).unwrap();
                        file.set_len(len as u64).unwrap();
                        current.resize(len, 0);
                    }
                    7..=8 => {
                        tracker.synced(7);
                        durable = current.clone();
                    }
                    _ => {
                        tracker.crash().unwrap();
                        current = durable.clone();
                        assert_eq!(std::fs::read(&path).unwrap(), durable, "seed {seed}");
                    }
                }
                assert_eq!(std::fs::read(&path).unwrap(), current, "seed {seed}");
            }
            let (report, _) = tracker.crash().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), durable, "seed {seed}");
            assert!(report.files <= 1);
        }
    }

    #[test]
    fn appends_save_nothing_and_a_file_untouched_since_tracking_began_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"old").unwrap();
        let file = Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
        );
        let mut tracker = Tracker::default();
        tracker.before_write(1, &file, 3, 4).unwrap();
        file.write_all_at(b"more", 3).unwrap();
        assert!(tracker.files[&1].saved.is_empty());
        let (report, inos) = tracker.crash().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            (
                report.files,
                report.bytes_truncated,
                report.bytes_restored,
                inos
            ),
            (1, 4, 0, vec![1])
        );
        assert_eq!(tracker.dirty_files(), 0);
    }
}
