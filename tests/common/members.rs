//! A cluster for fault tests: plain processes on 127.0.0.1, or (for partitions) each member in
//! its own network namespace. Both deref to `Cluster`; only a namespaced one can be partitioned.

use super::cluster::Cluster;
use super::netns::NetCluster;

pub enum Members {
    Plain(Cluster),
    Net(NetCluster),
}

impl std::ops::Deref for Members {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        match self {
            Members::Plain(c) => c,
            Members::Net(c) => c,
        }
    }
}

impl std::ops::DerefMut for Members {
    fn deref_mut(&mut self) -> &mut Cluster {
        match self {
            Members::Plain(c) => c,
            Members::Net(c) => c,
        }
    }
}

impl Members {
    /// Cuts member `i` off from the other members (the test process still reaches it).
    pub fn isolate(&self, i: usize) {
        match self {
            Members::Net(c) => c.isolate(i),
            Members::Plain(_) => unreachable!("partitions need a NetCluster"),
        }
    }

    pub fn heal(&self, i: usize) {
        match self {
            Members::Net(c) => c.heal(i),
            Members::Plain(_) => unreachable!("partitions need a NetCluster"),
        }
    }

    /// A live member other than the leader.
    pub fn follower(&self) -> usize {
        let leader = self.leader();
        self.live().into_iter().find(|&i| i != leader).unwrap()
    }
}
