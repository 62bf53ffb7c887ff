//! Why the model refuses an op in a state, and the sentence a report gives for it.

use std::fmt;

use super::Span;

/// Why an op cannot be linearized in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// A write's revision is not above one the key's earlier ops already proved.
    WriteNotAfter { revision: i64, proven: i64 },
    /// A read answered at a revision below one the key's earlier ops already proved.
    ReadBefore { revision: i64, proven: i64 },
    /// The response shows the key although it is absent.
    SawAbsentKey,
    /// The response shows the key absent although it holds a value.
    MissedLiveKey,
    /// The response shows another value than the key holds.
    OtherValue { seen: u32, state: u32 },
    /// The response shows the key's value with other fields.
    Mismatch {
        field: Field,
        seen: i64,
        state: Span,
    },
    /// The Cas succeeded although its compare does not hold, or failed although it holds.
    Compare {
        expected: i64,
        actual: i64,
        succeeded: bool,
    },
    /// A delete that reports one key deleted, with the key absent, or none with it present.
    Deleted { reported: bool },
    /// A Put with a revoked lease, or a second revoke of it, that the server accepted.
    LeaseRevoked { lease: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    CreateRevision,
    ModRevision,
    Version,
    Lease,
}

impl Reject {
    /// A sentence for the report; `value` names a value by its writer's index.
    pub(crate) fn explain(&self, value: &dyn Fn(u32) -> String) -> String {
        match *self {
            Reject::WriteNotAfter { revision, proven } => format!(
                "it creates revision {revision}, but this key's earlier ops already reached \
                 revision {proven}"
            ),
            Reject::ReadBefore { revision, proven } => format!(
                "it answered at revision {revision}, but this key's earlier ops already reached \
                 revision {proven} (a stale read)"
            ),
            Reject::SawAbsentKey => "it shows a value, but the key is absent there".into(),
            Reject::MissedLiveKey => "it shows the key absent, but the key holds a value".into(),
            Reject::OtherValue { seen, state } => format!(
                "it shows value {}, but the key holds {}",
                value(seen),
                value(state)
            ),
            Reject::Mismatch { field, seen, state } => {
                format!("it shows {field} {seen}, but the key's is {state}")
            }
            Reject::Compare {
                expected,
                actual,
                succeeded: true,
            } => format!(
                "the Cas succeeded comparing mod_revision with {expected}, but the key's is \
                 {actual}"
            ),
            Reject::Compare {
                expected,
                actual,
                succeeded: false,
            } => format!(
                "the Cas failed comparing mod_revision with {expected}, but the key's is {actual}"
            ),
            Reject::Deleted { reported: true } => {
                "it reports a key deleted, but the key is absent".into()
            }
            Reject::Deleted { reported: false } => {
                "it reports nothing deleted, but the key holds a value".into()
            }
            Reject::LeaseRevoked { lease } => {
                format!("the server accepted lease {lease} after it was revoked")
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::CreateRevision => "create_revision",
            Field::ModRevision => "mod_revision",
            Field::Version => "version",
            Field::Lease => "lease",
        })
    }
}
