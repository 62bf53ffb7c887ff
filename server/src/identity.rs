//! Who a member is: its id, its cluster's id, its name and URLs. Ids are derived the way etcd
//! derives them (a hash of the peer URLs and the cluster token) and kept in the data directory, so
//! that a restart with other flags keeps the identity the cluster knows.

use std::fs;
use std::io;
use std::path::Path;

use ballast_raft::layout::IDENTITY_FILE as FILE;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
}

fn hash_u64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// etcd's member id: a hash of the sorted peer URLs and the cluster token.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    hash_u64(&[urls.join("").as_bytes(), token.as_bytes()])
}

/// etcd's cluster id: a hash of the sorted member ids.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    hash_u64(&[&bytes])
}

/// Loads the identity kept in `dir`, or stores `fresh` there if there is none.
pub fn load_or_store(dir: &Path, fresh: Identity) -> io::Result<Identity> {
    let path = dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: malformed identity file", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let text = format!(
                "cluster_id={:x}\nmember_id={:x}\n",
                fresh.cluster_id, fresh.member_id
            );
            ballast_raft::fsutil::write_atomically(dir, FILE, text.as_bytes())?;
            Ok(fresh)
        }
        Err(e) => Err(e),
    }
}

fn parse(text: &str) -> Option<Identity> {
    let mut cluster_id = None;
    let mut member_id = None;
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        let v = u64::from_str_radix(v.trim(), 16).ok()?;
        match k.trim() {
            "cluster_id" => cluster_id = Some(v),
            "member_id" => member_id = Some(v),
            _ => return None,
        }
    }
    Some(Identity {
        cluster_id: cluster_id?,
        member_id: member_id?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_urls_and_token_not_order() {
        let a = vec!["http://a:2380".to_owned(), "http://b:2380".to_owned()];
        let b = vec!["http://b:2380".to_owned(), "http://a:2380".to_owned()];
        assert_eq!(member_id(&a, "t"), member_id(&b, "t"));
        assert_ne!(member_id(&a, "t"), member_id(&a, "u"));
        assert_eq!(cluster_id(&[1, 2]), cluster_id(&[2, 1]));
    }

    #[test]
    fn the_first_identity_stored_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        assert_eq!(load_or_store(dir.path(), first.clone()).unwrap(), first);
        assert_eq!(
            load_or_store(
                dir.path(),
                Identity {
                    cluster_id: 3,
                    member_id: 4
                }
            )
            .unwrap(),
            first
        );
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(load_or_store(dir.path(), first).is_err());
    }
}
