//! Human-readable forms of recorded operations, for violation reports.

use std::fmt;

use crate::history::{Input, Kv, Operation, Output};

/// Bytes shown as a quoted, escaped string (keys and values are usually ASCII).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// Nanoseconds shown as milliseconds with microsecond precision.
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}ms", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

pub(crate) struct ShowKv<'a>(pub(crate) &'a Kv);

impl fmt::Display for ShowKv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kv = self.0;
        write!(
            f,
            "{}={} (create {}, mod {}, version {}",
            Bytes(&kv.key),
            Bytes(&kv.value),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        )?;
        if kv.lease != 0 {
            write!(f, ", lease {}", kv.lease)?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Get { key } => write!(f, "Get {}", Bytes(key)),
            Input::Range { start, end } => write!(f, "Range [{}, {})", Bytes(start), Bytes(end)),
            Input::Put { key, value, lease } => {
                write!(f, "Put {}={}", Bytes(key), Bytes(value))?;
                if *lease != 0 {
                    write!(f, " lease {lease}")?;
                }
                Ok(())
            }
            Input::Delete { key } => write!(f, "Delete {}", Bytes(key)),
            Input::Cas {
                key,
                expected_mod_revision,
                value,
            } => write!(
                f,
                "Cas {} if mod_revision == {expected_mod_revision} then put {}",
                Bytes(key),
                Bytes(value)
            ),
            Input::LeaseGrant { lease } => write!(f, "LeaseGrant {lease}"),
            Input::LeaseRevoke { lease } => write!(f, "LeaseRevoke {lease}"),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Get { kv, revision } => match kv {
                Some(kv) => write!(f, "{} at revision {revision}", ShowKv(kv)),
                None => write!(f, "absent at revision {revision}"),
            },
            Output::Range { kvs, revision } => {
                write!(f, "[")?;
                for (n, kv) in kvs.iter().enumerate() {
                    if n > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}", ShowKv(kv))?;
                }
                write!(f, "] at revision {revision}")
            }
            Output::Put { revision } => write!(f, "ok, revision {revision}"),
            Output::Delete { deleted, revision } => {
                write!(f, "deleted {deleted}, revision {revision}")
            }
            Output::Cas {
                succeeded: true,
                revision,
                ..
            } => write!(f, "succeeded, revision {revision}"),
            Output::Cas {
                succeeded: false,
                kv,
                revision,
            } => match kv {
                Some(kv) => write!(f, "failed, saw {} at revision {revision}", ShowKv(kv)),
                None => write!(f, "failed, key absent at revision {revision}"),
            },
            Output::LeaseGrant { revision } | Output::LeaseRevoke { revision } => {
                write!(f, "ok, revision {revision}")
            }
            Output::Rejected => write!(f, "rejected"),
            Output::Unknown => write!(f, "unknown outcome"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} [{} .. ", self.client, Millis(self.call))?;
        if matches!(self.output, Output::Unknown) {
            write!(f, "never")?;
        } else {
            write!(f, "{}", Millis(self.ret))?;
        }
        write!(f, "] {} -> {}", self.input, self.output)
    }
}
