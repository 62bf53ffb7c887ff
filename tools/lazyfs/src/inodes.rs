//! FUSE inode numbers and the paths (relative to the underlying directory) that lead to them.
//!
//! An inode's FUSE number is its number in the underlying filesystem, except that the underlying
//! directory's own inode is FUSE's root (1) and an underlying inode numbered 1, if any, takes the
//! root's number instead: a swap, so numbers stay unique and stable across lookups. A file may have
//! several paths (hard links: RocksDB checkpoints link SST files); any one that still exists will do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// FUSE's inode number of the root directory.
pub const ROOT: u64 = 1;

#[derive(Debug)]
pub struct Inodes {
    root_backing: u64,
    paths: HashMap<u64, Vec<PathBuf>>,
}

impl Inodes {
    /// `root_backing`: the underlying directory's inode number.
    pub fn new(root_backing: u64) -> Inodes {
        Inodes {
            root_backing,
            paths: HashMap::new(),
        }
    }

    /// The FUSE inode number of an underlying inode.
    pub fn fuse_ino(&self, backing: u64) -> u64 {
        if backing == self.root_backing {
            ROOT
        } else if backing == ROOT {
            self.root_backing
        } else {
            backing
        }
    }

    /// A path of inode `ino` (the root's is empty), or None if the kernel asks about an inode it
    /// was never told of, or whose every path was removed.
    pub fn path(&self, ino: u64) -> Option<PathBuf> {
        if ino == ROOT {
            return Some(PathBuf::new());
        }
        self.paths
            .get(&ino)
            .and_then(|paths| paths.first())
            .cloned()
    }

    /// `path` leads to `ino` (a lookup, create or link found it so): it becomes the first choice.
    pub fn add(&mut self, ino: u64, path: PathBuf) {
        if ino == ROOT {
            return;
        }
        let paths = self.paths.entry(ino).or_default();
        paths.retain(|p| *p != path);
        paths.insert(0, path);
    }

    /// `path`, which led to `ino`, was removed.
    pub fn remove(&mut self, ino: u64, path: &Path) {
        if let Some(paths) = self.paths.get_mut(&ino) {
            paths.retain(|p| p != path);
            if paths.is_empty() {
                self.paths.remove(&ino);
            }
        }
    }

    /// `from` was renamed to `to` (replacing whatever `to` was): every path at or under `from`
    /// moves.
    pub fn renamed(&mut self, from: &Path, to: &Path) {
        self.paths.retain(|_, paths| {
            paths.retain(|p| p != to);
            for p in paths.iter_mut() {
                if let Ok(rest) = p.strip_prefix(from) {
                    *p = if rest.as_os_str().is_empty() {
                        to.to_owned()
                    } else {
                        to.join(rest)
                    };
                }
            }
            !paths.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_swap_with_the_root_and_paths_follow_renames() {
        let mut inodes = Inodes::new(500);
        assert_eq!(
            (inodes.fuse_ino(500), inodes.fuse_ino(1), inodes.fuse_ino(9)),
            (1, 500, 9)
        );
        inodes.add(9, "d/a".into());
        inodes.add(10, "d/b".into());
        inodes.add(11, "d".into());
        inodes.add(9, "e/link".into());
        assert_eq!(inodes.path(9), Some("e/link".into()));
        inodes.renamed(Path::new("d"), Path::new("x"));
        assert_eq!(inodes.path(10), Some("x/b".into()));
        assert_eq!(inodes.path(11), Some("x".into()));
        inodes.remove(9, Path::new("e/link"));
        assert_eq!(inodes.path(9), Some("x/a".into()));
        // A rename over x/b: its inode has no path left.
        inodes.renamed(Path::new("x/a"), Path::new("x/b"));
        assert_eq!(inodes.path(10), None);
        assert_eq!(inodes.path(9), Some("x/b".into()));
        assert_eq!(inodes.path(ROOT), Some(PathBuf::new()));
    }
}
