//! Broadcast channels from Rust, against the real C core: every reader gets
//! every frame, durable cursors resume without loss or duplicate, lossy
//! readers count exactly what writers lapped, zero-copy views of a lapped
//! reader report `Lapped`, a stuck tethered reader is untethered, and bad
//! input gets clear errors.  (The cross-process and cross-language runs are
//! in tests/test_broadcast_langs.py.)

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mycelium_shm::{
    forget_cursor, inspect, inspect_cursors, unlink, Batch, Error, OpenMode, Options, Policy, ReaderOptions,
    ShmReader, ShmWriter, Start, CURSOR_NAME_MAX, MAX_READERS,
};

/// A unique channel name that is unlinked when dropped, even if the test
/// panics first.
struct Channel(String);

impl Channel {
    fn new(label: &str) -> Channel {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Channel(format!(
            "rs-bc-{}-{label}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = unlink(&self.0);
    }
}

/// Frame `seq`: its sequence number, then `size` bytes derived from it.
fn payload(seq: u64, size: usize) -> Vec<u8> {
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((0..size).map(|i| (seq as usize * 7 + i) as u8));
    p
}

/// The sequence number of a frame made by [`payload`], checking its bytes.
fn check(p: &[u8]) -> u64 {
    let seq = u64::from_le_bytes(p[..8].try_into().expect("8-byte header"));
    assert_eq!(p, payload(seq, p.len() - 8), "frame {seq} is corrupt");
    seq
}

fn named(cursor: &str) -> ReaderOptions {
    ReaderOptions::new().cursor(cursor)
}

#[test]
fn every_tethered_reader_gets_every_frame_in_order() {
    let ch = Channel::new("all");
    let opts = Options::new().capacity(4096).readers(3);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut readers: Vec<ShmReader> =
        (0..3).map(|i| ShmReader::attach_with(&ch.0, &opts, &named(&format!("r{i}"))).unwrap()).collect();
    let total = 5_000u64;
    let mut next = [0u64; 3];
    let mut batch = Batch::new(64, 1 << 12);
    for seq in 0..total {
        // A 4 KiB ring holds a few dozen of these: the writer must wait for
        // the slowest tethered reader, so every reader drains as it goes.
        while let Err(Error::Full(_)) = w.try_write(1, &payload(seq, (seq % 200) as usize)) {
            for (i, r) in readers.iter_mut().enumerate() {
                let n = r.read_batch(&mut batch, Some(Duration::ZERO)).unwrap();
                for (_, p) in batch.iter().take(n) {
                    assert_eq!(check(p), next[i]);
                    next[i] += 1;
                }
            }
        }
    }
    for (i, r) in readers.iter_mut().enumerate() {
        while next[i] < total {
            let f = r.read(Some(Duration::from_secs(5))).unwrap().expect("a frame");
            assert_eq!(check(&f.payload), next[i]);
            next[i] += 1;
        }
        assert_eq!(r.try_read().unwrap(), None);
        let info = r.cursor_info().unwrap();
        assert_eq!((info.frames_read, info.lost, info.laps, info.lag), (total, 0, 0, 0));
        assert_eq!((info.policy, info.tethered, info.durable), (Policy::Tethered, true, true));
    }
    assert!(w.stats().unwrap().full_events > 0, "the writer never waited for a reader");
}

#[test]
fn zero_copy_readers_see_the_same_bytes() {
    let ch = Channel::new("peek");
    let opts = Options::new().readers(2);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut a = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new()).unwrap();
    let mut b = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new().policy(Policy::Lossy)).unwrap();
    w.write(9, &payload(0, 100), None).unwrap();
    let va = a.peek(None).unwrap().unwrap();
    let vb = b.peek(None).unwrap().unwrap();
    assert_eq!(va.payload().as_ptr(), vb.payload().as_ptr(), "both views point into the ring");
    assert_eq!((va.type_id(), check(&va)), (9, 0));
    va.release().unwrap();
    vb.release().unwrap();
    assert_eq!(a.peek_with(Some(Duration::ZERO), |v| v.len()).unwrap(), None);
}

#[test]
fn a_durable_cursor_resumes_without_loss_or_duplicate() {
    let ch = Channel::new("durable");
    let opts = Options::new().capacity(1 << 16).readers(2);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut r = ShmReader::attach_with(&ch.0, &opts, &named("books")).unwrap();
    for seq in 0..100 {
        w.write(1, &payload(seq, 10), None).unwrap();
    }
    for seq in 0..40 {
        assert_eq!(check(&r.read(None).unwrap().unwrap().payload), seq);
    }
    // Held by a live reader: a second one is refused.
    assert!(matches!(ShmReader::attach_with(&ch.0, &opts, &named("books")), Err(Error::ReaderBusy(_))));
    drop(r);
    let table = inspect_cursors(&ch.0).unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!((table[0].name.as_str(), table[0].pid, table[0].frames_read), ("books", None, 40));
    for seq in 100..150 {
        w.write(1, &payload(seq, 10), None).unwrap();
    }
    let mut r = ShmReader::attach_with(&ch.0, &opts, &named("books")).unwrap();
    for seq in 40..150 {
        assert_eq!(check(&r.read(None).unwrap().unwrap().payload), seq);
    }
    assert_eq!(r.try_read().unwrap(), None);
    assert_eq!(r.cursor_info().unwrap().frames_read, 150);
    // An anonymous cursor is freed when its reader goes.
    drop(ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new()).unwrap());
    assert_eq!(inspect_cursors(&ch.0).unwrap().len(), 1);
}

#[test]
fn a_new_cursor_starts_at_the_tail_or_the_oldest_frame() {
    let ch = Channel::new("start");
    let opts = Options::new().readers(3);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let _keeper = ShmReader::attach_with(&ch.0, &opts, &named("keeper")).unwrap();
    for seq in 0..5 {
        w.write(1, &payload(seq, 3), None).unwrap();
    }
    let mut tail = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new().start(Start::Tail)).unwrap();
    let mut oldest =
        ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new().start(Start::Oldest)).unwrap();
    w.write(1, &payload(5, 3), None).unwrap();
    assert_eq!(check(&tail.read(None).unwrap().unwrap().payload), 5);
    assert_eq!(tail.try_read().unwrap(), None);
    for seq in 0..6 {
        assert_eq!(check(&oldest.read(None).unwrap().unwrap().payload), seq);
    }
}

#[test]
fn a_lapped_lossy_reader_counts_exactly_what_it_lost() {
    let ch = Channel::new("lossy");
    let opts = Options::new().capacity(4096).readers(1);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut r = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new().policy(Policy::Lossy)).unwrap();
    let total = 2_000u64;
    let mut next = 0u64;
    let (mut frames, mut gaps) = (0u64, 0u64);
    for seq in 0..total {
        // A lossy reader never slows writers: no write waits.
        w.try_write(1, &payload(seq, (seq % 90) as usize)).unwrap();
        if seq % 500 == 499 {
            // Catch up now and then: what was overwritten meanwhile is lost.
            while let Some(f) = r.try_read().unwrap() {
                let got = check(&f.payload);
                assert!(got >= next, "frame {got} after {next}: out of order");
                gaps += got - next;
                next = got + 1;
                frames += 1;
            }
        }
    }
    while let Some(f) = r.try_read().unwrap() {
        let got = check(&f.payload);
        gaps += got - next;
        next = got + 1;
        frames += 1;
    }
    gaps += total - next;
    let info = r.cursor_info().unwrap();
    assert!(info.laps >= 1 && r.laps() == info.laps);
    assert!(gaps > 0);
    assert_eq!((r.lost(), info.frames_read), (gaps, frames));
    assert_eq!(frames + r.lost(), total);
    assert_eq!(w.stats().unwrap().full_events, 0);
}

#[test]
fn a_lossy_view_overwritten_while_held_is_lapped() {
    let ch = Channel::new("lapped");
    let opts = Options::new().capacity(4096).readers(1);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut r = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new().policy(Policy::Lossy)).unwrap();
    w.write(1, &payload(0, 50), None).unwrap();
    // Not overwritten: the closure's result comes back.
    assert_eq!(r.peek_with(None, |v| check(v)).unwrap(), Some(0));
    w.write(1, &payload(1, 50), None).unwrap();
    let mut written = 2u64;
    let got = r.peek_with(None, |v| {
        let seq = check(v); // intact so far
        for _ in 0..60 {
            w.try_write(1, &payload(written, 100)).unwrap();
            written += 1;
        }
        seq
    });
    assert!(matches!(got, Err(Error::Lapped(_))), "{got:?}");
    // The same through a view held by hand: check() says so before release.
    let mut frames = 2u64; // frames 0 and 1 were consumed (the lapped one too)
    let view = r.peek(None).unwrap().unwrap();
    view.check().unwrap();
    for _ in 0..60 {
        w.try_write(1, &payload(written, 100)).unwrap();
        written += 1;
    }
    assert!(matches!(view.check(), Err(Error::Lapped(_))));
    assert!(matches!(view.release(), Err(Error::Lapped(_))));
    frames += 1;
    while r.try_read().unwrap().is_some() {
        frames += 1;
    }
    let info = r.cursor_info().unwrap();
    assert_eq!(info.frames_read, frames);
    assert_eq!(info.frames_read + info.lost, written, "every frame is read or counted lost");
    assert!(info.laps >= 2);
}

#[test]
fn tethered_readers_never_report_lapped() {
    let ch = Channel::new("tethered-peek");
    let opts = Options::new().capacity(4096).readers(1);
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut r = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new()).unwrap();
    w.write(1, &payload(0, 50), None).unwrap();
    let full = r
        .peek_with(None, |v| {
            // The held frame holds writers back: the ring fills instead.
            let mut writes = 0;
            while w.try_write(1, &payload(1, 100)).is_ok() {
                writes += 1;
            }
            (check(v), writes)
        })
        .unwrap()
        .unwrap();
    assert_eq!(full.0, 0);
    assert!(full.1 < 40, "{} writes of 116 bytes went into a 4 KiB ring", full.1);
}

#[test]
fn a_stuck_tethered_reader_is_untethered_after_the_window() {
    let ch = Channel::new("untether");
    let opts = Options::new().capacity(4096).readers(2).untether(Duration::from_millis(100));
    let w = ShmWriter::create(&ch.0, &opts).unwrap();
    let started = Instant::now(); // before the reader's last sign of life
    let mut stuck = ShmReader::attach_with(&ch.0, &opts, &named("stuck")).unwrap();
    for seq in 0..500 {
        w.write(1, &payload(seq, 100), Some(Duration::from_secs(10))).unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(90), "the writer never waited");
    let info = stuck.cursor_info().unwrap();
    assert!(info.untethers >= 1 && !info.tethered, "{info:?}");
    assert_eq!(inspect_cursors(&ch.0).unwrap()[0].untethers, info.untethers);
    // It reads on lossily from what is left, and accounts for the rest.
    let mut frames = 0;
    while stuck.try_read().unwrap().is_some() {
        frames += 1;
    }
    assert!(stuck.lost() > 0);
    assert_eq!(frames + stuck.lost(), 500);
    assert!(stuck.cursor_info().unwrap().tethered, "caught up: tethered again");
}

#[test]
fn single_reader_channels_have_no_cursor() {
    let ch = Channel::new("single");
    let r = ShmReader::create(&ch.0, &Options::new()).unwrap();
    assert_eq!(inspect(&ch.0).unwrap().reader_slots, 0);
    assert!(matches!(r.cursor_info(), Err(Error::InvalidArgument(_))));
    assert_eq!((r.lost(), r.laps()), (0, 0));
    assert!(inspect_cursors(&ch.0).unwrap().is_empty());
    assert!(matches!(forget_cursor(&ch.0, "x"), Err(Error::InvalidArgument(_))));
    drop(r);
    // A cursor name, or a lossy policy, means nothing to a single reader.
    let err = ShmReader::attach_with(&ch.0, &Options::new(), &named("x")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // Asking for a broadcast channel when attaching: refused.
    let err = ShmWriter::attach(&ch.0, &Options::new().readers(2)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn bad_input_gets_clear_errors() {
    let ch = Channel::new("bad");
    let err = ShmWriter::create(&ch.0, &Options::new().readers(MAX_READERS + 1)).unwrap_err();
    assert!(matches!(err, Error::TooManyReaders(_)), "{err}");
    let err =
        ShmWriter::create(&ch.0, &Options::new().readers(2).untether(Duration::from_micros(10))).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("untether")), "{err}");
    let opts = Options::new().readers(2);
    let _w = ShmWriter::open(&ch.0, OpenMode::Create, &opts).unwrap();
    assert_eq!(inspect(&ch.0).unwrap().reader_slots, 2);
    let err = ShmWriter::attach(&ch.0, &Options::new().readers(3)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    for bad in ["", "a\u{1}b", "nul\0byte", &"x".repeat(CURSOR_NAME_MAX + 1)] {
        let err = ShmReader::attach_with(&ch.0, &opts, &named(bad)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err}");
    }
    let longest = "é".repeat(CURSOR_NAME_MAX / 2);
    let a = ShmReader::attach_with(&ch.0, &opts, &named(&longest)).unwrap();
    assert_eq!(a.cursor_info().unwrap().name, longest);
    let _b = ShmReader::attach_with(&ch.0, &opts, &ReaderOptions::new()).unwrap();
    let err = ShmReader::attach_with(&ch.0, &opts, &named("third")).unwrap_err();
    assert!(matches!(err, Error::TooManyReaders(_)), "{err}");
    assert_eq!(err.kind_name(), "TooManyReaders");
    assert!(matches!(forget_cursor(&ch.0, "nobody"), Err(Error::NotFound(_))));
    assert!(matches!("fast".parse::<Policy>(), Err(Error::InvalidArgument(_))));
}
