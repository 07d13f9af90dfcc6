type t = {
  capacity : int;
  max_payload : int;
  head : int;
  tail : int;
  frames_written : int;
  bytes_written : int;
  full_events : int;
  write_timeouts : int;
  writer_wakes : int;
  frames_read : int;
  bytes_read : int;
  padding_frames : int;
  unblocks : int;
  reader_wakes : int;
  reader_sleeps : int;
  takeovers : int;
}

let pp ppf s =
  Format.fprintf ppf
    "@[<hov 1>{capacity=%d@ max_payload=%d@ head=%d@ tail=%d@ \
     frames_written=%d@ bytes_written=%d@ full_events=%d@ write_timeouts=%d@ \
     writer_wakes=%d@ frames_read=%d@ bytes_read=%d@ padding_frames=%d@ \
     unblocks=%d@ reader_wakes=%d@ reader_sleeps=%d@ takeovers=%d}@]"
    s.capacity s.max_payload s.head s.tail s.frames_written s.bytes_written
    s.full_events s.write_timeouts s.writer_wakes s.frames_read s.bytes_read
    s.padding_frames s.unblocks s.reader_wakes s.reader_sleeps s.takeovers
