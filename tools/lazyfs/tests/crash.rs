//! lazyfs mounted for real (through the kernel's FUSE): what a crash keeps and what it loses.
//! Each test skips, saying so, where /dev/fuse is absent.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use lazyfs::{Mount, Options};

struct Mounted {
    mount: Mount,
    backing: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Mounted {
    fn path(&self, name: &str) -> PathBuf {
        self.mount.mountpoint().join(name)
    }
}

fn mount(options: Options) -> Option<Mounted> {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED: /dev/fuse is absent, lazyfs cannot be mounted here");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    fs::create_dir(&backing).unwrap();
    fs::create_dir(&mnt).unwrap();
    let mount = Mount::new(&backing, &mnt, &options).expect("mount lazyfs");
    Some(Mounted {
        mount,
        backing,
        _tmp: tmp,
    })
}

fn append(path: &Path, data: &[u8]) -> File {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(data).unwrap();
    file
}

#[test]
fn a_crash_keeps_what_was_synced_and_loses_the_rest() {
    let Some(m) = mount(Options::default()) else {
        return;
    };

    // Synced, then appended to and overwritten without a sync.
    append(&m.path("a"), b"durable").sync_all().unwrap();
    append(&m.path("a"), b" but not this");
    OpenOptions::new()
        .write(true)
        .open(m.path("a"))
        .unwrap()
        .write_all_at(b"DUR", 0)
        .unwrap();
    // Never synced.
    append(&m.path("b"), b"never synced");
    // Synced, truncated, rewritten in part past the cut.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(m.path("c"), &big).unwrap();
    File::open(m.path("c")).unwrap().sync_all().unwrap();
    let c = OpenOptions::new().write(true).open(m.path("c")).unwrap();
    c.set_len(100).unwrap();
    c.write_all_at(b"x", 5000).unwrap();
    // Synced, renamed (metadata: durable at once), appended to.
    append(&m.path("d"), b"abc").sync_data().unwrap();
    fs::rename(m.path("d"), m.path("e")).unwrap();
    append(&m.path("e"), b"def");
    // In a directory; and a hard link written through its second name.
    fs::create_dir(m.path("g")).unwrap();
    append(&m.path("g/h"), b"in a dir").sync_all().unwrap();
    append(&m.path("l1"), b"linked").sync_all().unwrap();
    fs::hard_link(m.path("l1"), m.path("l2")).unwrap();
    append(&m.path("l2"), b" and more");
    // Removed: nothing to revert.
    append(&m.path("gone"), b"x");
    fs::remove_file(m.path("gone")).unwrap();
    assert_eq!(fs::read(m.path("a")).unwrap(), b"DURable but not this");
    assert_eq!(m.mount.crasher().dirty_files(), 5);

    let report = m.mount.crash().unwrap();
    assert_eq!(report.files, 5, "{report:?}");
    assert_eq!(report.bytes_restored, 3 + (big.len() as u64 - 100));

    for root in [m.mount.mountpoint(), m.backing.as_path()] {
        assert_eq!(fs::read(root.join("a")).unwrap(), b"durable");
        assert_eq!(
            fs::read(root.join("b")).unwrap(),
            b"",
            "a never synced file is empty"
        );
        assert_eq!(fs::read(root.join("c")).unwrap(), big);
        assert!(!root.join("d").exists());
        assert_eq!(fs::read(root.join("e")).unwrap(), b"abc");
        assert_eq!(fs::read(root.join("g/h")).unwrap(), b"in a dir");
        assert_eq!(fs::read(root.join("l1")).unwrap(), b"linked");
        assert_eq!(fs::read(root.join("l2")).unwrap(), b"linked");
    }
    assert_eq!(m.mount.crasher().dirty_files(), 0);

    // The filesystem goes on after a crash.
    append(&m.path("a"), b"!").sync_all().unwrap();
    assert_eq!(m.mount.crash().unwrap().files, 0);
    assert_eq!(fs::read(m.path("a")).unwrap(), b"durable!");
}

#[test]
fn large_files_read_back_and_directories_list() {
    let Some(m) = mount(Options::default()) else {
        return;
    };
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(m.path("big"), &data).unwrap();
    assert_eq!(fs::read(m.path("big")).unwrap(), data);
    fs::create_dir_all(m.path("x/y")).unwrap();
    for i in 0..300 {
        fs::write(m.path(&format!("x/y/f{i}")), b"").unwrap();
    }
    assert_eq!(fs::read_dir(m.path("x/y")).unwrap().count(), 300);
    fs::rename(m.path("x"), m.path("z")).unwrap();
    assert_eq!(fs::read(m.path("z/y/f7")).unwrap(), b"");
    fs::remove_file(m.path("z/y/f7")).unwrap();
    assert_eq!(fs::read_dir(m.path("z/y")).unwrap().count(), 299);
    let stat = fs::metadata(m.path("big")).unwrap();
    assert_eq!(stat.len(), data.len() as u64);
    // A never-synced file loses everything.
    m.mount.crash().unwrap();
    assert_eq!(fs::metadata(m.path("big")).unwrap().len(), 0);
}

#[test]
fn with_every_write_synced_a_crash_loses_nothing() {
    let Some(m) = mount(Options {
        sync_every_write: true,
        ..Options::default()
    }) else {
        return;
    };
    append(&m.path("a"), b"no fsync at all");
    fs::write(m.path("b"), b"1234567890").unwrap();
    OpenOptions::new()
        .write(true)
        .open(m.path("b"))
        .unwrap()
        .set_len(3)
        .unwrap();
    let report = m.mount.crash().unwrap();
    assert_eq!(report.files, 0);
    assert_eq!(fs::read(m.path("a")).unwrap(), b"no fsync at all");
    assert_eq!(fs::read(m.path("b")).unwrap(), b"123");
}

#[test]
fn locks_are_kept_by_the_kernel_between_processes() {
    let Some(m) = mount(Options::default()) else {
        return;
    };
    let lock = m.path("LOCK");
    fs::write(&lock, b"").unwrap();
    // One holder process, with no copy of the locked descriptor anywhere else: the shell opens the
    // file, locks it with flock(1) (the lock belongs to the open file, which the shell keeps),
    // says so, and becomes `sleep`. (`flock -o FILE sleep` forks, and its child holds the file
    // open until it closes it before exec: a kill of the parent in that window left the lock held.)
    let script = r#"exec 9<"$1"; flock -n 9 || exit 1; echo locked; exec sleep 30"#;
    let mut holder = std::process::Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&lock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut said,
    )
    .unwrap();
    assert_eq!(said, "locked\n", "the holder did not get the lock");
    assert!(
        !std::process::Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success(),
        "a second process got a held lock"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(std::process::Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap()
        .success());
}
