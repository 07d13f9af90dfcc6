//! The channel API against the real C core: round trips, full rings,
//! timeouts, the single-reader rule, schema digests, zero-copy guards,
//! errors, and sharing one writer between threads.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mycelium_shm::generated::{MarketTick, Message, SCHEMA_DIGEST};
use mycelium_shm::sys::{MYC_FRAME_ALIGNMENT, MYC_FRAME_HEADER_SIZE, MYC_WRITER_SLOTS};
use mycelium_shm::{
    force_unblock, inspect, unlink, Batch, BatchError, Error, Frame, OpenMode, Options, ShmReader, ShmWriter,
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
            "rs-test-{}-{label}-{}-{nanos:x}",
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

fn small() -> Options {
    Options::new().capacity(4096).max_payload(512)
}

#[test]
fn frames_round_trip_in_order() {
    let ch = Channel::new("roundtrip");
    let mut r = ShmReader::create(&ch.0, &Options::new().capacity(1 << 16)).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let frames: Vec<Frame> =
        (0..100u16).map(|i| Frame { type_id: i + 1, payload: (0..i).map(|b| b as u8).collect() }).collect();
    for f in &frames {
        w.write(f.type_id, &f.payload, None).unwrap();
    }
    for f in &frames {
        assert_eq!(r.read(Some(Duration::from_secs(1))).unwrap().as_ref(), Some(f));
    }
    assert_eq!(r.try_read().unwrap(), None);
    let s = r.stats().unwrap();
    assert_eq!((s.frames_written, s.frames_read), (100, 100));
    assert_eq!(s.bytes_read, (0..100u64).sum::<u64>());
}

#[test]
fn the_ring_wraps_many_times_without_loss() {
    let ch = Channel::new("wrap");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let mut buf = Vec::new();
    for i in 0..5000u32 {
        let payload = i.to_le_bytes().repeat((i % 37) as usize);
        w.try_write(1, &payload).unwrap();
        assert_eq!(r.read_into(&mut buf, Some(Duration::ZERO)).unwrap(), Some(1));
        assert_eq!(buf, payload, "frame {i}");
    }
    assert!(r.stats().unwrap().head > 4 * 4096);
}

#[test]
fn a_full_ring_refuses_writes_until_read() {
    let ch = Channel::new("full");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let mut written = 0;
    loop {
        match w.try_write(2, &[7; 500]) {
            Ok(()) => written += 1,
            Err(Error::Full(_)) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(written < 100, "a 4 KiB ring never filled");
    }
    assert!(written >= 6, "only {written} frames of 508 bytes fit in 4 KiB");
    let start = Instant::now();
    assert!(matches!(w.write(2, &[7; 500], Some(Duration::from_millis(50))), Err(Error::Full(_))));
    assert!(start.elapsed() >= Duration::from_millis(45), "gave up after {:?}", start.elapsed());
    let s = w.stats().unwrap();
    assert!(s.full_events >= 2 && s.write_timeouts >= 1, "{s:?}");
    assert!(r.try_read().unwrap().is_some());
    w.try_write(2, &[7; 500]).unwrap();
}

#[test]
fn a_blocked_writer_wakes_when_the_reader_frees_room() {
    let ch = Channel::new("wake");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    while w.try_write(3, &[1; 500]).is_ok() {}
    let full_before = w.stats().unwrap().full_events;
    std::thread::scope(|s| {
        let t = s.spawn(|| w.write(3, &[2; 500], Some(Duration::from_secs(5))));
        // Free room only once the writer has found the ring full (it then
        // spins or sleeps until the reader wakes it).
        let deadline = Instant::now() + Duration::from_secs(5);
        while w.stats().unwrap().full_events == full_before {
            assert!(Instant::now() < deadline, "the writer never found the ring full");
            std::thread::yield_now();
        }
        assert!(r.read(Some(Duration::ZERO)).unwrap().is_some());
        t.join().unwrap().unwrap();
    });
}

#[test]
fn read_times_out_empty_and_wakes_on_write() {
    let ch = Channel::new("timeout");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let start = Instant::now();
    assert_eq!(r.read(Some(Duration::from_millis(50))).unwrap(), None);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(45) && waited < Duration::from_secs(2), "{waited:?}");

    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let sleeps_before = w.stats().unwrap().reader_sleeps;
    std::thread::scope(|s| {
        s.spawn(|| {
            // Write only once the reader sleeps on its futex: the write must wake it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while w.stats().unwrap().reader_sleeps == sleeps_before {
                assert!(Instant::now() < deadline, "the reader never went to sleep");
                std::thread::yield_now();
            }
            w.write(4, b"late", None).unwrap();
        });
        let f = r.read(None).unwrap().unwrap();
        assert_eq!(f.payload, b"late");
    });
}

#[test]
fn only_one_live_reader() {
    let ch = Channel::new("busy");
    let first = ShmReader::create(&ch.0, &small()).unwrap();
    assert!(matches!(ShmReader::attach(&ch.0, &Options::new()), Err(Error::ReaderBusy(_))));
    assert_eq!(inspect(&ch.0).unwrap().reader_pid, Some(std::process::id() as i32));
    drop(first);
    let _second = ShmReader::attach(&ch.0, &Options::new()).unwrap();
}

#[test]
fn schema_digests_must_agree() {
    let ch = Channel::new("schema");
    let opts = small().schema_digest(SCHEMA_DIGEST);
    let _w = ShmWriter::create(&ch.0, &opts).unwrap();
    let mut other = SCHEMA_DIGEST;
    other[0] ^= 1;
    let wrong = Options::new().schema_digest(other);
    assert!(matches!(ShmWriter::attach(&ch.0, &wrong), Err(Error::SchemaMismatch(_))));
    assert!(matches!(ShmReader::attach(&ch.0, &wrong), Err(Error::SchemaMismatch(_))));
    // No digest given: attaching does not check.
    let _w2 = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let _r = ShmReader::attach(&ch.0, &opts).unwrap();
    assert_eq!(inspect(&ch.0).unwrap().schema_digest, Some(SCHEMA_DIGEST));
}

#[test]
fn reservations_commit_or_abort() {
    let ch = Channel::new("reserve");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();

    let mut res = w.reserve(5, 3, None).unwrap();
    assert_eq!(res.len(), 3);
    res.copy_from_slice(b"one");
    res.commit().unwrap();

    let mut dropped = w.reserve(6, 10, None).unwrap();
    dropped.fill(0xEE);
    drop(dropped); // aborted: becomes padding

    w.reserve(7, 0, None).unwrap().commit().unwrap();
    w.reserve(8, 4, None).unwrap().abort().unwrap();

    assert_eq!(r.try_read().unwrap(), Some(Frame { type_id: 5, payload: b"one".to_vec() }));
    assert_eq!(r.try_read().unwrap(), Some(Frame { type_id: 7, payload: vec![] }));
    assert_eq!(r.try_read().unwrap(), None);
    let s = r.stats().unwrap();
    assert_eq!(s.frames_read, 2);
    assert!(s.padding_frames >= 2, "{s:?}");
}

#[test]
fn a_peeked_view_is_consumed_on_drop() {
    let ch = Channel::new("peek");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    w.write(1, b"first", None).unwrap();
    w.write(2, b"second", None).unwrap();
    {
        let v = r.peek(Some(Duration::from_secs(1))).unwrap().unwrap();
        assert_eq!((v.type_id(), v.flags(), &*v), (1, 0, &b"first"[..]));
        assert_eq!(head(&w), 0, "the frame's bytes stay claimed while the view lives");
    }
    assert_eq!(head(&w), frame_bytes(5), "released on drop: header + 5 bytes, aligned");
    assert_eq!(frame_bytes(5), 32, "a 16-byte header + 5 bytes, 16-aligned");
    let v = r.try_peek().unwrap().unwrap();
    assert_eq!(v.to_frame(), Frame { type_id: 2, payload: b"second".to_vec() });
    drop(v);
    assert!(r.try_peek().unwrap().is_none());
    assert_eq!(r.stats().unwrap().frames_read, 2);
}

fn head(w: &ShmWriter) -> u64 {
    w.stats().unwrap().head
}

/// Ring bytes a frame of `payload` bytes occupies (header included, aligned).
fn frame_bytes(payload: u64) -> u64 {
    let align = u64::from(MYC_FRAME_ALIGNMENT);
    (u64::from(MYC_FRAME_HEADER_SIZE) + payload).div_ceil(align) * align
}

#[test]
fn write_batch_writes_the_prefix_that_fits() {
    let ch = Channel::new("batch");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 300]).collect();
    let frames: Vec<(u16, &[u8])> =
        payloads.iter().enumerate().map(|(i, p)| (i as u16 + 1, &p[..])).collect();
    let n = w.write_batch(&frames, Some(Duration::ZERO)).unwrap();
    assert!((1..20).contains(&n), "{n} of 20 frames of 316 bytes in a 4 KiB ring");
    assert_eq!(n as u64, 4096 / frame_bytes(300), "every frame that fits, and no more");
    for (i, p) in payloads.iter().take(n).enumerate() {
        assert_eq!(r.try_read().unwrap(), Some(Frame { type_id: i as u16 + 1, payload: p.clone() }));
    }
    assert_eq!(r.try_read().unwrap(), None);
    assert_eq!(w.write_batch(&[], None).unwrap(), 0);
}

#[test]
fn a_failed_write_batch_says_how_many_frames_went_out() {
    let ch = Channel::new("batch-error");
    let _r = ShmReader::create(&ch.0, &small()).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    // Refused before anything is claimed: nothing written.
    let err = w.write_batch(&[(1, &b"ok"[..]), (2, &[0; 513][..])], None).unwrap_err();
    assert_eq!(err.written, 0);
    assert!(matches!(err.error, Error::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("0 frame(s)"), "{err}");
    // The ring full: nothing written either.
    while w.try_write(1, &[0; 500]).is_ok() {}
    while w.try_write(1, b"").is_ok() {}
    let before = w.stats().unwrap().frames_written;
    let err = w.write_batch(&[(1, &b""[..])], Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, BatchError { written: 0, error: Error::Full(_) }), "{err}");
    // `?` into the crate's Error keeps the cause.
    let plain: Error = err.into();
    assert_eq!(plain.kind_name(), "Full");
    assert_eq!(w.stats().unwrap().frames_written, before);
}

#[test]
fn errors_map_to_their_variants() {
    let ch = Channel::new("errors");
    assert!(matches!(ShmWriter::attach(&ch.0, &Options::new()), Err(Error::NotFound(_))));
    assert!(matches!(ShmWriter::create("bad/name", &small()), Err(Error::InvalidName(_))));
    assert!(matches!(ShmWriter::create("nul\0name", &small()), Err(Error::InvalidName(_))));
    assert!(matches!(
        ShmWriter::create(&ch.0, &Options::new().capacity(1000)),
        Err(Error::InvalidArgument(_))
    ));
    let w = ShmWriter::create(&ch.0, &small()).unwrap();
    assert!(matches!(ShmWriter::create(&ch.0, &small()), Err(Error::Exists(_))));
    let err = w.write(1, &[0; 513], None).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    assert!(!err.detail().is_empty(), "the C core's detail text is carried");
    assert!(matches!(w.write(0, b"", None), Err(Error::InvalidArgument(_))), "type id 0 is padding");
    assert!(matches!(w.reserve(1, 513, None), Err(Error::TooLarge(_))));
    let _ = ShmWriter::open(&ch.0, OpenMode::CreateOrAttach, &small()).unwrap();
}

#[test]
fn a_non_channel_object_is_a_format_error() {
    let ch = Channel::new("format");
    std::fs::write(format!("/dev/shm/mycelium.{}", ch.0), vec![0x5a; 8192]).unwrap();
    let err = ShmReader::attach(&ch.0, &Options::new()).unwrap_err();
    assert!(matches!(err, Error::Format(_)), "{err}");
}

#[test]
fn messages_travel_typed() {
    let ch = Channel::new("messages");
    let opts = small().schema_digest(SCHEMA_DIGEST);
    let mut r = ShmReader::create(&ch.0, &opts).unwrap();
    let w = ShmWriter::attach(&ch.0, &opts).unwrap();
    let tick = MarketTick { symbol: "EURUSD".into(), seq: u64::MAX, bid: f64::NAN, ..Default::default() };
    w.write_message(&tick, None).unwrap();
    match r.read_message(None).unwrap() {
        Some(Message::MarketTick(got)) => {
            assert_eq!((got.symbol.as_str(), got.seq), ("EURUSD", u64::MAX));
            assert_eq!(got.bid.to_bits(), tick.bid.to_bits());
        }
        other => panic!("{other:?}"),
    }
    w.write_message(&Message::from(tick.clone()), None).unwrap();
    assert_eq!(r.read_message(None).unwrap().map(|m: Message| m.type_id()), Some(MarketTick::TYPE_ID));
    w.write(9, b"", None).unwrap();
    assert!(matches!(r.read_message::<Message>(None), Err(Error::Decode(_))));
}

#[test]
fn one_writer_shared_by_threads_loses_nothing() {
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 5000;
    let ch = Channel::new("threads");
    let mut r = ShmReader::create(&ch.0, &Options::new().capacity(1 << 14)).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let mut next = [0u32; THREADS as usize];
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let w = &w;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let mut p = t.to_le_bytes().to_vec();
                    p.extend_from_slice(&i.to_le_bytes());
                    w.write(1, &p, Some(Duration::from_secs(10))).unwrap();
                }
            });
        }
        // The reader moves to another thread (it is Send).
        let reader = s.spawn(move || {
            for _ in 0..THREADS * PER_THREAD {
                let f = r.read(Some(Duration::from_secs(10))).unwrap().expect("frame");
                let t = u32::from_le_bytes(f.payload[..4].try_into().unwrap()) as usize;
                let i = u32::from_le_bytes(f.payload[4..].try_into().unwrap());
                assert_eq!(i, next[t], "writer {t} out of order");
                next[t] += 1;
            }
            assert_eq!(r.try_read().unwrap(), None);
            next
        });
        assert_eq!(reader.join().unwrap(), [PER_THREAD; THREADS as usize]);
    });
}

#[test]
fn handles_have_the_right_auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ShmWriter>();
    send::<ShmReader>();
    send_sync::<Error>();
}

#[test]
fn a_live_writers_stalled_claim_holds_the_reader_until_force_unblocked() {
    let ch = Channel::new("abandon");
    let mut r = ShmReader::create(&ch.0, &small()).unwrap();
    r.set_stuck_timeout(Duration::from_millis(5));
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let other = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let me = std::process::id() as i32;
    assert!(matches!(force_unblock(&ch.0), Err(Error::Empty(_))), "nothing to unblock yet");

    let stalled = w.reserve(1, 8, None).unwrap();
    // (This thread cannot write through `w` while its reservation is open.)
    assert!(matches!(w.write(2, b"x", None), Err(Error::InvalidArgument(_))));
    other.write(2, b"after", None).unwrap();
    // The claim's writer lives: the reader waits for it (back-pressure)
    // rather than skipping it, and shows the stall.
    let before = std::time::SystemTime::now();
    assert_eq!(r.read(Some(Duration::from_millis(50))).unwrap(), None);
    let info = inspect(&ch.0).unwrap();
    assert_eq!(info.stalled_pid, Some(me));
    let since = info.stalled_since.expect("the stall's start time");
    assert!(since <= std::time::SystemTime::now() && since + Duration::from_secs(5) > before, "{since:?}");
    assert_eq!(info.hold_position, None);

    let (pid, position) = force_unblock(&ch.0).unwrap();
    assert_eq!((pid, position), (me, 0));
    assert_eq!(inspect(&ch.0).unwrap().hold_position, Some(0), "held until its writer returns");
    // The revoked frame is skipped; the reader goes on.
    let f = r.read(Some(Duration::from_secs(2))).unwrap().expect("the frame after the revoked claim");
    assert_eq!(f, Frame { type_id: 2, payload: b"after".to_vec() });
    let s = r.stats().unwrap();
    assert_eq!((s.frames_read, s.unblocks), (1, 0), "revoked, not skipped as a dead writer's");

    let err = stalled.commit().unwrap_err();
    assert!(matches!(err, Error::Abandoned(_)), "{err}");
    assert_eq!(err.kind_name(), "FrameAbandoned");
    let info = inspect(&ch.0).unwrap();
    assert_eq!((info.hold_position, info.stalled_pid), (None, None), "{info:?}");
    assert_eq!(r.try_read().unwrap(), None);
    assert!(matches!(force_unblock(&ch.0), Err(Error::Empty(_))));
    assert!(matches!(force_unblock(&format!("{}-missing", ch.0)), Err(Error::NotFound(_))));
}

#[test]
fn writer_slots_run_out_at_the_limit() {
    let ch = Channel::new("slots");
    let mut writers: Vec<ShmWriter> = (0..MYC_WRITER_SLOTS)
        .map(|_| ShmWriter::open(&ch.0, OpenMode::CreateOrAttach, &small()).unwrap())
        .collect();
    let err = ShmWriter::attach(&ch.0, &Options::new()).unwrap_err();
    assert!(matches!(err, Error::TooManyWriters(_)), "{err}");
    assert_eq!(err.kind_name(), "TooManyWriters");
    // One line per process in inspect, however many slots it holds.
    assert_eq!(inspect(&ch.0).unwrap().writers, [(std::process::id() as i32, true)]);
    writers.pop();
    let _w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
}

#[test]
fn read_batch_copies_many_frames_per_call() {
    let ch = Channel::new("rbatch");
    let mut r = ShmReader::create(&ch.0, &Options::new().capacity(1 << 16)).unwrap();
    let w = ShmWriter::attach(&ch.0, &Options::new()).unwrap();
    let mut batch = Batch::new(16, 100);
    assert_eq!(r.read_batch(&mut batch, Some(Duration::from_millis(10))).unwrap(), 0);
    assert!(batch.is_empty());
    for i in 0..40u16 {
        w.write(i + 1, &[i as u8; 10], None).unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 40 {
        let n = r.read_batch(&mut batch, Some(Duration::from_secs(1))).unwrap();
        // 16 frames at most; the buffer holds at least the channel's largest
        // payload, so the frame count is the limit here.
        assert!((1..=16).contains(&n), "{n}");
        assert_eq!(batch.len(), n);
        seen.extend(batch.iter().map(|(t, p)| (t, p.to_vec())));
    }
    let want: Vec<(u16, Vec<u8>)> = (0..40u16).map(|i| (i + 1, vec![i as u8; 10])).collect();
    assert_eq!(seen, want);
    assert_eq!(r.try_read().unwrap(), None);
}
