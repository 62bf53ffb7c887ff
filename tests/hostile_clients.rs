//! Clients that break the protocol on purpose, against a real `ballast kv` over TCP: each is cut
//! off, and the member's memory does not grow with what they send.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const GOAWAY: u8 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The member's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames for as
/// long as the member reads them (CVE-2024-27316's shape). The member must answer with a GOAWAY
/// (or close) long before 256 MiB are sent, and its memory must stay flat; without a bound in the
/// `:authority` wrapper in front of h2, 600 MiB took a member from 81 MiB to 1.8 GiB.
#[test]
fn a_continuation_flood_is_cut_off() {
    let m = common::Member::start(&[]);
    let before = rss_kib(m.child.id());
    let mut conn = TcpStream::connect(m.endpoint()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A member that stops reading without closing also holds nothing more: the write times out.
    conn.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = conn.try_clone().unwrap();
    let got_goaway = std::thread::spawn(move || {
        // Frames from the member until it closes: true once a GOAWAY was among them.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let mut goaway = false;
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 9 {
                let len =
                    (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                goaway |= buf[3] == GOAWAY;
                buf.drain(..9 + len);
            }
        }
        goaway
    });
    conn.write_all(PREFACE).unwrap();
    conn.write_all(&frame(0x4, 0, 0, &[])).unwrap(); // SETTINGS
                                                     // :method POST, :scheme http, :path / (static table), no END_HEADERS.
    conn.write_all(&frame(0x1, 0, 1, &[0x83, 0x86, 0x84]))
        .unwrap();
    let continuation = frame(0x9, 0, 1, &[0x40; 16_384]);
    let mut sent = 0usize;
    let limit = 256 << 20;
    while sent < limit {
        if conn.write_all(&continuation).is_err() {
            break;
        }
        sent += continuation.len();
    }
    assert!(sent < limit, "the member read 256 MiB of one header block");
    let goaway = got_goaway.join().unwrap();
    let after = rss_kib(m.child.id());
    eprintln!(
        "sent {} KiB; member RSS {before} -> {after} KiB; GOAWAY: {goaway}",
        sent >> 10
    );
    assert!(
        after < before + 64 * 1024,
        "the member grew from {before} to {after} KiB"
    );
    // The member still serves others.
    assert_eq!(m.ok(&["put", "k", "v"]), "OK\n");
}
