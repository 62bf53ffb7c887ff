//! Finds a torn record at the end of a RocksDB write-ahead log file, so that opening the raft log
//! can say so instead of dropping it silently.
//!
//! The raft log opens RocksDB with `TolerateCorruptedTailRecords`: a record whose checksum fails is
//! refused (the member does not start), but an incomplete record at the end of the newest WAL is
//! dropped without a word, as it must be after a power loss in the middle of an unsynced append.
//! The same shape is what a disk that lost synced data leaves, so it is worth a warning: etcd logs
//! "repairing WAL" for its own torn tails. A cut exactly between two records leaves nothing to see.
//!
//! The format (RocksDB's `db/log_format.h`): the file is a sequence of 32 KiB blocks; a record
//! fragment is a header (crc32c: 4 bytes, payload length: 2 bytes little-endian, type: 1 byte; 4
//! more bytes of log number for the recyclable types) and its payload, and never crosses a block;
//! fewer than a header's bytes left in a block are zero padding. A logical record is one Full
//! fragment, or First, Middle..., Last.

const BLOCK: usize = 32 * 1024;
const HEADER: usize = 7;
const RECYCLABLE_HEADER: usize = 11;

const ZERO: u8 = 0;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const RECYCLABLE_FIRST: u8 = 6;
const RECYCLABLE_MIDDLE: u8 = 7;

fn header_len(kind: u8) -> usize {
    // Recyclable Full/First/Middle/Last (5..=8), recyclable user-defined timestamp size (11),
    // recyclable predecessor WAL info (131).
    if matches!(kind, 5..=8 | 11 | 131) {
        RECYCLABLE_HEADER
    } else {
        HEADER
    }
}

/// The length of the intact prefix of `wal` if it ends in an incomplete record: a header or
/// payload cut short, or a First/Middle fragment with no Last. `None` if it ends on a record
/// boundary (or in zeros, RocksDB's preallocated space).
pub fn torn_tail(wal: &[u8]) -> Option<usize> {
    let (mut at, mut record_start) = (0, 0);
    let mut open_record = false;
    while at < wal.len() {
        let left_in_block = BLOCK - at % BLOCK;
        if left_in_block < HEADER {
            at += left_in_block;
            continue;
        }
        if at + HEADER > wal.len() {
            return Some(if open_record { record_start } else { at });
        }
        let len = u16::from_le_bytes([wal[at + 4], wal[at + 5]]) as usize;
        let kind = wal[at + 6];
        if kind == ZERO && len == 0 {
            // Preallocated or padding zeros: the log ends here.
            break;
        }
        let end = at + header_len(kind) + len;
        if end > wal.len() {
            return Some(if open_record { record_start } else { at });
        }
        match kind {
            FIRST | RECYCLABLE_FIRST => {
                record_start = at;
                open_record = true;
            }
            MIDDLE | RECYCLABLE_MIDDLE => {}
            _ => open_record = false,
        }
        at = end;
    }
    open_record.then_some(record_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(kind: u8, payload_len: usize) -> Vec<u8> {
        let mut f = vec![0xAB, 0xCD, 0xEF, 0x01];
        f.extend((payload_len as u16).to_le_bytes());
        f.push(kind);
        f.extend(std::iter::repeat_n(0x5A, payload_len));
        f
    }

    #[test]
    fn whole_records_are_not_torn() {
        let mut wal = fragment(1, 100);
        wal.extend(fragment(1, 5));
        assert_eq!(torn_tail(&wal), None);
        assert_eq!(torn_tail(&[]), None);
        // Preallocated zeros after the last record.
        wal.extend([0u8; 64]);
        assert_eq!(torn_tail(&wal), None);
    }

    #[test]
    fn a_cut_inside_the_last_record_is_torn() {
        let mut wal = fragment(1, 100);
        let boundary = wal.len();
        wal.extend(fragment(1, 50));
        for cut in [boundary + 1, boundary + 6, boundary + 7, wal.len() - 1] {
            assert_eq!(torn_tail(&wal[..cut]), Some(boundary), "cut at {cut}");
        }
    }

    #[test]
    fn a_record_split_across_blocks_is_torn_until_its_last_fragment() {
        // A First fragment filling the first block, then its Last in the second.
        let mut wal = fragment(2, BLOCK - HEADER);
        let second = wal.len();
        wal.extend(fragment(4, 30));
        assert_eq!(torn_tail(&wal), None);
        assert_eq!(torn_tail(&wal[..second]), Some(0), "First without its Last");
        assert_eq!(torn_tail(&wal[..second + 10]), Some(0));
    }

    #[test]
    fn block_trailers_are_skipped() {
        // A Full record leaving 3 bytes in the block: those are padding, the next record starts
        // the next block.
        let mut wal = fragment(1, BLOCK - HEADER - 3);
        wal.extend([0u8; 3]);
        wal.extend(fragment(1, 10));
        assert_eq!(torn_tail(&wal), None);
        assert_eq!(torn_tail(&wal[..BLOCK + 3]), Some(BLOCK));
        // The file may end inside the padding.
        assert_eq!(torn_tail(&wal[..BLOCK - 1]), None);
    }

    #[test]
    fn recyclable_headers_are_longer() {
        let mut f = fragment(5, 20);
        f.splice(HEADER..HEADER, [0, 0, 0, 9]);
        assert_eq!(torn_tail(&f), None);
        assert_eq!(torn_tail(&f[..f.len() - 1]), Some(0));
    }
}
