//! The bad-input table of the Python tests (tests/test_bad_inputs.py), as far
//! as Rust's types leave anything to check: each row gets its typed error,
//! whose text names the argument; and a handle used in a forked child fails
//! with `Error::Forked` while the parent's ends keep working.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mycelium_shm::{unlink, Batch, Error, Options, ShmReader, ShmWriter};

struct Channel(String);

impl Channel {
    fn new(label: &str) -> Channel {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Channel(format!("rs-bad-{}-{label}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = unlink(&self.0);
    }
}

/// Assert `result` is the error `kind_name` (e.g. "InvalidArgument") whose
/// detail mentions `names`.
fn assert_error<T: std::fmt::Debug>(
    row: &str,
    result: mycelium_shm::Result<T>,
    kind_name: &str,
    names: &str,
) {
    match result {
        Ok(v) => panic!("{row}: expected {kind_name}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind_name(), kind_name, "{row}: {e}");
            assert!(e.detail().contains(names), "{row}: {e:?} does not name {names:?}");
        }
    }
}

#[test]
fn open_arguments_out_of_range_name_the_argument() {
    let rows: Vec<(&str, Options, &str)> = vec![
        ("capacity 0", Options::new().capacity(0), "capacity"),
        ("capacity 1000", Options::new().capacity(1000), "capacity"),
        ("capacity 3000", Options::new().capacity(3000), "capacity"),
        ("capacity 2^33", Options::new().capacity(1 << 33), "capacity"),
        ("capacity 2^40", Options::new().capacity(1 << 40), "capacity"),
        ("capacity u64::MAX", Options::new().capacity(u64::MAX), "capacity"),
        ("max_payload too big", Options::new().capacity(4096).max_payload(2033), "max_payload"),
        ("max_payload u32::MAX", Options::new().capacity(4096).max_payload(u32::MAX), "max_payload"),
        ("mode 0o1000", Options::new().mode(0o1000), "mode"),
        ("mode u32::MAX", Options::new().mode(u32::MAX), "mode"),
    ];
    for (row, options, names) in rows {
        let ch = Channel::new("open");
        assert_error(row, ShmWriter::create(&ch.0, &options), "InvalidArgument", names);
        assert_error(row, ShmReader::create(&ch.0, &options), "InvalidArgument", names);
    }
}

#[test]
fn names_are_checked() {
    for (row, name, says) in [
        ("empty", "", "empty"),
        ("slash", "a/b", "'/'"),
        ("dotdot", "..", ".."),
        ("nul", "a\0b", "NUL"),
        ("long", &"x".repeat(300)[..], "245"),
    ] {
        assert_error(row, ShmWriter::create(name, &Options::new()), "InvalidName", says);
        assert_error(row, ShmReader::attach(name, &Options::new()), "InvalidName", says);
        assert_error(row, mycelium_shm::inspect(name), "InvalidName", says);
        assert_error(row, unlink(name), "InvalidName", says);
    }
}

#[test]
fn frame_arguments_name_the_argument() {
    let ch = Channel::new("frames");
    let w = ShmWriter::create(&ch.0, &Options::new().capacity(4096).max_payload(512)).unwrap();
    assert_error("type_id 0", w.write(0, b"x", None), "InvalidArgument", "type_id 0");
    assert_error("try_write type_id 0", w.try_write(0, b"x"), "InvalidArgument", "type_id");
    assert_error("reserve type_id 0", w.reserve(0, 1, None).map(|_| ()), "InvalidArgument", "type_id");
    let err = w.write_batch(&[(1, &b"a"[..]), (0, &b"b"[..])], None).unwrap_err();
    assert_eq!((err.written, err.error.kind_name()), (0, "InvalidArgument"));
    assert!(err.error.detail().contains("type_id"), "{err}");
    assert_error("payload 513", w.write(1, &[0; 513], None), "TooLarge", "payload of 513 bytes");
    assert_error("reserve 513", w.reserve(1, 513, None).map(|_| ()), "TooLarge", "payload of 513 bytes");
    assert_error("reserve 2^40", w.reserve(1, 1 << 40, None).map(|_| ()), "TooLarge", "payload");
    assert_error("reserve usize::MAX", w.reserve(1, usize::MAX, None).map(|_| ()), "TooLarge", "payload");
}

#[test]
fn batch_sizes_are_checked_before_allocating() {
    assert_error("max_frames 0", Batch::try_new(0, 64), "InvalidArgument", "max_frames");
    assert_error("max_frames 2^40", Batch::try_new(1 << 40, 64), "InvalidArgument", "max_frames");
    assert_error("max_frames usize::MAX", Batch::try_new(usize::MAX, 64), "InvalidArgument", "max_frames");
    assert_error("max_bytes usize::MAX", Batch::try_new(8, usize::MAX), "InvalidArgument", "max_bytes");
    assert_eq!(Batch::try_new(Batch::MAX_FRAMES.min(1 << 10), 0).unwrap().max_frames(), 1 << 10);
}

#[test]
fn timeouts_at_the_edges_keep_their_meaning() {
    // Option<Duration>: no negative, NaN or infinite value exists; zero does
    // not wait and the longest Duration saturates instead of overflowing.
    let ch = Channel::new("timeouts");
    let w = ShmWriter::create(&ch.0, &Options::new().capacity(4096)).unwrap();
    let mut r = ShmReader::attach(&ch.0, &Options::new()).unwrap();
    assert_eq!(r.read(Some(Duration::ZERO)).unwrap(), None);
    assert_eq!(r.read(Some(Duration::from_millis(1))).unwrap(), None);
    w.write(1, b"a", Some(Duration::MAX)).unwrap();
    assert_eq!(r.read(Some(Duration::MAX)).unwrap().map(|f| f.payload), Some(b"a".to_vec()));
}

#[test]
fn closed_and_dropped_handles() {
    // Rust closes on drop: a closed handle cannot be named afterwards, so the
    // closed-handle rows of the Python table are compile-time errors here.
    let ch = Channel::new("closed");
    let w = ShmWriter::create(&ch.0, &Options::new().capacity(4096)).unwrap();
    drop(w);
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    w.write(1, b"again", None).unwrap();
}

extern "C" {
    fn fork() -> i32;
    fn _exit(status: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

/// Run `child` in a forked child: its exit status (0 = passed).
fn in_child(child: impl FnOnce() -> bool) -> i32 {
    // SAFETY: the child only calls into the C core (no lock another thread
    // of the test harness may hold: the core's locks belong to this
    // handle) and leaves with _exit, running no destructor of the parent's.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(false);
        // SAFETY: ends the child at once.
        unsafe { _exit(if ok { 0 } else { 1 }) }
    }
    let mut status = 0;
    // SAFETY: pid is this process's child; status is a valid place.
    let waited = unsafe { waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    status
}

fn is_forked<T>(result: mycelium_shm::Result<T>) -> bool {
    matches!(result, Err(Error::Forked(ref m)) if m.contains("forked process"))
}

#[test]
fn forked_child_gets_forked_and_the_parent_keeps_working() {
    let ch = Channel::new("fork");
    let w = ShmWriter::create(&ch.0, &Options::new().capacity(4096)).unwrap();
    let mut r = ShmReader::attach(&ch.0, &Options::new()).unwrap();
    w.write(3, b"pending", None).unwrap();
    let status = in_child(|| {
        is_forked(w.write(1, b"child", None))
            && is_forked(w.try_write(1, b"child"))
            && is_forked(w.reserve(1, 4, None).map(|_| ()))
            && is_forked(r.read(Some(Duration::ZERO)))
            && is_forked(r.read(None))
    });
    assert_eq!(status, 0, "the child's calls did not all fail with Error::Forked");
    // The parent: its pending frame is still there, writes and reads work,
    // its reader is not taken over.
    assert_eq!(r.read(Some(Duration::from_secs(1))).unwrap().map(|f| f.payload), Some(b"pending".to_vec()));
    w.write(7, b"after", None).unwrap();
    assert_eq!(
        r.read(Some(Duration::from_secs(1))).unwrap().map(|f| (f.type_id, f.payload)),
        Some((7, b"after".to_vec()))
    );
    let info = mycelium_shm::inspect(&ch.0).unwrap();
    assert_eq!(info.reader_pid, Some(std::process::id() as i32));
    assert_eq!(r.stats().unwrap().takeovers, 0);
}
