//! Snapshot files: a member's whole database as one stream, in a format `etcdctl snapshot save`
//! accepts, and the restore that builds a data directory from one.
//!
//! Layout: the magic `BALLAST-SNAPSHOT-1\n`, then per file of a RocksDB checkpoint
//! `be32(name length) name be64(size) bytes`, then `be32(0)`; zero padding to a multiple of 512
//! bytes; then the SHA-256 of everything before it. etcdctl checks only that the size is a multiple
//! of 512 plus 32 (the digest etcd appends to its bbolt file); `restore` checks the digest.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8] = b"BALLAST-SNAPSHOT-1\n";
const ALIGN: u64 = 512;
const DIGEST: u64 = 32;

/// The files of a checkpoint directory, in a fixed order, with their sizes.
pub fn list_files(dir: &Path) -> io::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "non-UTF-8 file name"))?;
        out.push((name, entry.path(), entry.metadata()?.len()));
    }
    out.sort();
    Ok(out)
}

/// The body length (before padding) and the total length of the snapshot of `files`.
pub fn sizes(files: &[(String, PathBuf, u64)]) -> (u64, u64) {
    let body = MAGIC.len() as u64
        + files
            .iter()
            .map(|(name, _, size)| 4 + name.len() as u64 + 8 + size)
            .sum::<u64>()
        + 4;
    let padded = body.div_ceil(ALIGN) * ALIGN;
    (body, padded + DIGEST)
}

/// Writes the snapshot of `files` to `out` in pieces; `out` is called once per piece, in order.
/// Nothing bigger than one read buffer is held in memory.
pub fn write_stream(
    files: &[(String, PathBuf, u64)],
    mut out: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut sha = Sha256::new();
    let mut emit = |bytes: &[u8], sha: &mut Sha256| -> io::Result<()> {
        sha.update(bytes);
        out(bytes)
    };
    emit(MAGIC, &mut sha)?;
    let mut buf = vec![0u8; 64 * 1024];
    for (name, path, size) in files {
        let mut header = Vec::with_capacity(12 + name.len());
        header.extend_from_slice(&(name.len() as u32).to_be_bytes());
        header.extend_from_slice(name.as_bytes());
        header.extend_from_slice(&size.to_be_bytes());
        emit(&header, &mut sha)?;
        let mut file = File::open(path)?.take(*size);
        let mut copied = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            copied += n as u64;
            emit(&buf[..n], &mut sha)?;
        }
        if copied != *size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} shrank while being sent"),
            ));
        }
    }
    emit(&0u32.to_be_bytes(), &mut sha)?;
    let (body, total) = sizes(files);
    let pad = vec![0u8; (total - DIGEST - body) as usize];
    emit(&pad, &mut sha)?;
    let digest = sha.finalize();
    out(&digest)
}

/// Unpacks a snapshot file into the new directory `dir` after checking its digest.
pub fn unpack(snapshot: &Path, dir: &Path) -> io::Result<()> {
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", snapshot.display()),
        )
    };
    let len = fs::metadata(snapshot)?.len();
    if len < DIGEST || !(len - DIGEST).is_multiple_of(ALIGN) {
        return Err(invalid(
            "not a snapshot (size is not a multiple of 512 plus a 32-byte digest)",
        ));
    }
    // First pass: the digest, so that nothing is unpacked from a damaged file.
    let mut file = BufReader::new(File::open(snapshot)?);
    let mut sha = Sha256::new();
    io::copy(&mut (&mut file).take(len - DIGEST), &mut sha)?;
    let mut want = [0u8; DIGEST as usize];
    file.read_exact(&mut want)?;
    if sha.finalize().as_slice() != want {
        return Err(invalid("digest mismatch: the file is damaged"));
    }
    let mut file = BufReader::new(File::open(snapshot)?).take(len - DIGEST);
    let mut magic = vec![0u8; MAGIC.len()];
    file.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(invalid("not a ballast snapshot (bad magic)"));
    }
    fs::create_dir(dir)?;
    loop {
        let mut n = [0u8; 4];
        file.read_exact(&mut n)?;
        let name_len = u32::from_be_bytes(n) as usize;
        if name_len == 0 {
            break;
        }
        if name_len > 4096 {
            return Err(invalid("file name too long"));
        }
        let mut name = vec![0u8; name_len];
        file.read_exact(&mut name)?;
        let name = String::from_utf8(name).map_err(|_| invalid("non-UTF-8 file name"))?;
        if name.contains('/') || name == ".." || name == "." {
            return Err(invalid("file name with a path"));
        }
        let mut size = [0u8; 8];
        file.read_exact(&mut size)?;
        let size = u64::from_be_bytes(size);
        let mut out = File::create(dir.join(&name))?;
        let copied = io::copy(&mut (&mut file).take(size), &mut out)?;
        if copied != size {
            return Err(invalid("truncated"));
        }
        out.sync_all()?;
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Saves a snapshot of `files` to `path` (used by tests and by restore's round trip).
pub fn save(files: &[(String, PathBuf, u64)], path: &Path) -> io::Result<()> {
    let mut out = io::BufWriter::new(File::create(path)?);
    write_stream(files, |b| out.write_all(b))?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_caught() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a.sst"), vec![7u8; 100_000]).unwrap();
        fs::write(src.path().join("CURRENT"), b"MANIFEST-1\n").unwrap();
        let files = list_files(src.path()).unwrap();
        let work = tempfile::tempdir().unwrap();
        let snap = work.path().join("snap.db");
        save(&files, &snap).unwrap();
        let len = fs::metadata(&snap).unwrap().len();
        assert_eq!(len % 512, 32, "etcdctl's size check");
        assert_eq!(len, sizes(&files).1);

        let out = work.path().join("restored");
        unpack(&snap, &out).unwrap();
        assert_eq!(fs::read(out.join("a.sst")).unwrap(), vec![7u8; 100_000]);
        assert_eq!(fs::read(out.join("CURRENT")).unwrap(), b"MANIFEST-1\n");

        let mut bytes = fs::read(&snap).unwrap();
        bytes[5000] ^= 1;
        fs::write(&snap, &bytes).unwrap();
        let err = unpack(&snap, &work.path().join("again")).unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        assert!(
            !work.path().join("again").exists(),
            "nothing unpacked from a damaged file"
        );
    }
}
