//! A userspace TCP proxy in front of a member's peer port, for link faults that `tc netem` would
//! give on a full kernel (it is not available here): delay, loss and a blackhole.
//!
//! The member listens on its real peer port and advertises the proxy's port, so every connection
//! another member opens to it (raft appends, votes, snapshots, forwarded requests, and their
//! answers on the same connection) passes through its proxy. Bytes are copied in chunks, one
//! thread per direction per connection, and the fault in force applies per chunk:
//! - delay: each chunk waits `base ± jitter` before it is passed on (order is kept, so delays
//!   also throttle a busy connection, as a slow link does);
//! - drop: each chunk is lost with the given probability; a lost chunk breaks the byte stream, so
//!   the connection is reset (what a TCP peer sees when its retransmissions give up);
//! - blackhole: chunks are read and discarded; a connection that lost data this way is reset
//!   when the blackhole ends, and new connections then work again.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

/// What the proxy does to the bytes passing through it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkFault {
    Healthy,
    Delay { base: Duration, jitter: Duration },
    Drop { probability: f64 },
    Blackhole,
}

#[derive(Debug)]
struct State {
    fault: Mutex<LinkFault>,
    stop: AtomicBool,
    /// Both ends of every connection, to reset them when the proxy is dropped.
    conns: Mutex<Vec<TcpStream>>,
}

impl State {
    fn fault(&self) -> LinkFault {
        *self.fault.lock().unwrap()
    }
}

/// A running proxy; stops (and resets its connections) when dropped.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            fault: Mutex::new(LinkFault::Healthy),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accept_state = state.clone();
        std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || {
                for inbound in listener.incoming() {
                    if accept_state.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(inbound) = inbound else { continue };
                    // The member may be down: then the connection is simply refused onwards.
                    let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1))
                    else {
                        continue;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    accept_state
                        .conns
                        .lock()
                        .unwrap()
                        .extend([inbound.try_clone().unwrap(), outbound.try_clone().unwrap()]);
                    for (from, to) in [
                        (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                        (outbound, inbound),
                    ] {
                        let state = accept_state.clone();
                        std::thread::spawn(move || pump(from, to, &state));
                    }
                }
            })
            .unwrap();
        Proxy { port, state }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set(&self, fault: LinkFault) {
        *self.state.fault.lock().unwrap() = fault;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for conn in self.state.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` chunk by chunk under the fault in force; resets both on loss.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &State) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut lost = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.stop.load(Ordering::Relaxed) {
            break;
        }
        match state.fault() {
            LinkFault::Blackhole => {
                lost = true;
                continue;
            }
            _ if lost => break,
            LinkFault::Healthy => {}
            LinkFault::Delay { base, jitter } => {
                let j = jitter.as_micros() as i64;
                let micros = base.as_micros() as i64
                    + if j > 0 {
                        rand::thread_rng().gen_range(-j..=j)
                    } else {
                        0
                    };
                std::thread::sleep(Duration::from_micros(micros.max(0) as u64));
            }
            LinkFault::Drop { probability } => {
                if rand::thread_rng().gen_bool(probability) {
                    break;
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
