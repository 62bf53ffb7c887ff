//! The `lazyfs` binary: mounts lazyfs (see the library's documentation for the model) and takes
//! commands on a unix socket, one per line, each answered with one line:
//!
//! - `crash`: revert every file to its last sync; answers `ok files=N truncated=B restored=B`.
//! - `dirty`: answers `ok files=N`, the files with unsynced changes.
//!
//! For example `echo crash | socat - UNIX-CONNECT:/tmp/lazyfs.sock`. It runs until the mount is
//! unmounted (`umount MOUNTPOINT`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use lazyfs::{Crasher, Mount, Options};

#[derive(Debug, Parser)]
#[command(
    name = "lazyfs",
    about = "A FUSE passthrough filesystem that loses unsynced data on command"
)]
struct Args {
    /// The directory whose files lazyfs serves.
    backing: PathBuf,
    /// Where to mount it (an existing directory).
    mountpoint: PathBuf,
    /// A unix socket to take commands on (`crash`, `dirty`).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Treat every write as synced: a crash loses nothing.
    #[arg(long)]
    sync_every_write: bool,
    /// Threads serving the kernel's requests.
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let options = Options {
        sync_every_write: args.sync_every_write,
        threads: args.threads,
    };
    let mount = Mount::new(&args.backing, &args.mountpoint, &options).with_context(|| {
        format!(
            "mounting {} at {}",
            args.backing.display(),
            args.mountpoint.display()
        )
    })?;
    if let Some(path) = &args.control {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("removing an old control socket")
            }
            _ => {}
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        let crasher = mount.crasher();
        std::thread::Builder::new()
            .name("lazyfs-control".into())
            .spawn(move || serve(&listener, &crasher))?;
    }
    tracing::info!(mountpoint = %args.mountpoint.display(), "mounted; `umount` it to stop");
    mount.wait().context("serving the filesystem")?;
    Ok(())
}

fn serve(listener: &UnixListener, crasher: &Crasher) {
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                if let Err(e) = answer(conn, crasher) {
                    tracing::warn!(error = %e, "control connection failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
        }
    }
}

fn answer(conn: UnixStream, crasher: &Crasher) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    for line in BufReader::new(conn).lines() {
        let reply = match line?.trim() {
            "crash" => match crasher.crash() {
                Ok(r) => {
                    tracing::info!(
                        files = r.files,
                        truncated = r.bytes_truncated,
                        restored = r.bytes_restored,
                        "crashed"
                    );
                    format!(
                        "ok files={} truncated={} restored={}",
                        r.files, r.bytes_truncated, r.bytes_restored
                    )
                }
                Err(e) => format!("error {e}"),
            },
            "dirty" => format!("ok files={}", crasher.dirty_files()),
            other => format!("error unknown command {other:?} (expected crash or dirty)"),
        };
        writeln!(out, "{reply}")?;
    }
    Ok(())
}
