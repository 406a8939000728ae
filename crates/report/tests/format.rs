//! The report format as the shim sees it: what the encoder writes, the decoder reads back.

use undertaker_report::{
    Decoder, EndedBy, Hello, Leaked, LineBuf, MainExited, Mode, OwnedRecord, ParseError, Reaped,
    Record, Scope, Status, MAX_LINE, MINOR,
};

fn encode(record: &Record<&[u8]>) -> Vec<u8> {
    LineBuf::new().encode(record).to_vec()
}

fn decode_all(bytes: &[u8]) -> Vec<Result<OwnedRecord, ParseError>> {
    Decoder::new().feed(bytes).collect()
}

fn owned(record: &Record<&[u8]>) -> OwnedRecord {
    match record {
        Record::Hello(hello) => Record::Hello(*hello),
        Record::MainStarted { pid } => Record::MainStarted { pid: *pid },
        Record::Reaped(r) => Record::Reaped(Reaped {
            pid: r.pid,
            status: r.status,
            comm: r.comm.to_vec(),
        }),
        Record::Leaked(l) => Record::Leaked(Leaked {
            pid: l.pid,
            ended_by: l.ended_by,
            comm: l.comm.to_vec(),
            cmdline: l.cmdline.to_vec(),
            truncated: l.truncated,
        }),
        Record::MainExited(e) => Record::MainExited(*e),
        Record::Dropped { total } => Record::Dropped { total: *total },
    }
}

/// Every byte value, in a comm and a cmdline with NULs between arguments.
const AWKWARD: &[u8] = b"a b\nc\0d\\e=f\xff\x7f\t\x1b[0m";

fn samples() -> Vec<Record<&'static [u8]>> {
    vec![
        Record::Hello(Hello {
            minor: MINOR,
            pid: 1,
            mode: Mode::Pid1,
            scope: Scope::Group,
            drain_ms: 2000,
        }),
        Record::MainStarted { pid: 7 },
        Record::Reaped(Reaped {
            pid: 12,
            status: Status::Exited(0),
            comm: b"sh",
        }),
        Record::Reaped(Reaped {
            pid: 4_194_304,
            status: Status::Signaled(9),
            comm: AWKWARD,
        }),
        Record::Leaked(Leaked {
            pid: 40,
            ended_by: EndedBy::Kill,
            comm: b"sleep",
            cmdline: b"sleep\x00100\x00",
            truncated: false,
        }),
        Record::Leaked(Leaked {
            pid: 41,
            ended_by: EndedBy::Term,
            comm: b"",
            cmdline: AWKWARD,
            truncated: false,
        }),
        Record::MainExited(MainExited {
            pid: 7,
            status: Status::Signaled(15),
            code: 143,
        }),
        Record::Dropped { total: u64::MAX },
    ]
}

#[test]
fn every_record_round_trips() {
    for record in samples() {
        let line = encode(&record);
        assert_eq!(
            decode_all(&line),
            vec![Ok(owned(&record))],
            "line {:?}",
            String::from_utf8_lossy(&line)
        );
    }
}

#[test]
fn lines_are_plain_ascii_with_one_newline() {
    for record in samples() {
        let line = encode(&record);
        let (last, body) = line.split_last().unwrap();
        assert_eq!(*last, b'\n');
        assert!(
            body.iter()
                .all(|byte| byte.is_ascii_graphic() || *byte == b' '),
            "{body:?}"
        );
    }
}

#[test]
fn the_written_form_is_the_documented_one() {
    let hello = Record::Hello(Hello {
        minor: 0,
        pid: 1,
        mode: Mode::Subreaper,
        scope: Scope::All,
        drain_ms: 500,
    });
    assert_eq!(
        encode(&hello),
        b"UT1 hello minor=0 pid=1 mode=subreaper scope=all drain_ms=500\n"
    );
    let leaked: Record<&[u8]> = Record::Leaked(Leaked {
        pid: 9,
        ended_by: EndedBy::Term,
        comm: b"my prog",
        cmdline: b"a\\b\0x\n",
        truncated: false,
    });
    assert_eq!(
        encode(&leaked),
        b"leaked pid=9 by=term comm=my\\x20prog cmdline=a\\\\b\\x00x\\x0a\n"
    );
}

#[test]
fn records_split_anywhere_decode_the_same() {
    let stream: Vec<u8> = samples().iter().flat_map(encode).collect();
    let expected = decode_all(&stream);
    assert_eq!(expected.len(), samples().len());
    for chunk in [1, 2, 3, 7, 64, 4095] {
        let mut decoder = Decoder::new();
        let got: Vec<_> = stream
            .chunks(chunk)
            .flat_map(|bytes| decoder.feed(bytes))
            .collect();
        assert_eq!(got, expected, "chunk size {chunk}");
        assert_eq!(decoder.finish(), None);
    }
}

#[test]
fn garbage_is_an_error_for_its_line_only() {
    let mut stream = b"main pid=3\n\xff\xfe garbage\nreaped pid=x exit=0 comm=a\nreaped pid=4 comm=a\nmain pid\n\nreaped pid=4 exit=0 comm=a\\q\n".to_vec();
    stream.extend(encode(&Record::MainStarted { pid: 5 }));
    let got = decode_all(&stream);
    assert_eq!(got.len(), 8, "{got:?}");
    assert_eq!(got[0], Ok(Record::MainStarted { pid: 3 }));
    assert!(
        matches!(got[1], Err(ParseError::Malformed { line: 2, .. })),
        "{:?}",
        got[1]
    );
    assert!(matches!(&got[2], Err(ParseError::BadValue { line: 3, field, .. }) if field == "pid"));
    assert!(matches!(
        got[3],
        Err(ParseError::MissingField {
            line: 4,
            field: "exit",
            ..
        })
    ));
    assert!(matches!(got[4], Err(ParseError::Malformed { line: 5, .. })));
    assert!(matches!(got[5], Err(ParseError::Malformed { line: 6, .. })));
    assert!(matches!(&got[6], Err(ParseError::BadValue { line: 7, field, .. }) if field == "comm"));
    assert_eq!(got[7], Ok(Record::MainStarted { pid: 5 }));
    let mut decoder = Decoder::new();
    let _ = decoder.feed(&stream).count();
    assert_eq!(
        decoder.feed(b"main pid=5\n").collect::<Vec<_>>(),
        vec![Ok(Record::MainStarted { pid: 5 })]
    );
}

#[test]
fn an_over_long_line_is_one_error_and_decoding_goes_on() {
    let mut decoder = Decoder::new();
    let mut got: Vec<_> = decoder.feed(&[b'x'; MAX_LINE * 3]).collect();
    got.extend(decoder.feed(b"yyy\nmain pid=2\n"));
    assert_eq!(
        got,
        vec![
            Err(ParseError::TooLong { line: 1 }),
            Ok(Record::MainStarted { pid: 2 })
        ]
    );
}

#[test]
fn a_line_cut_by_the_end_of_the_stream_is_reported() {
    let mut decoder = Decoder::new();
    assert_eq!(decoder.feed(b"main pid=1\nreaped pid=2 ex").count(), 1);
    assert_eq!(
        decoder.finish(),
        Some(ParseError::Truncated {
            line: 2,
            bytes: b"reaped pid=2 ex".len()
        })
    );
    assert_eq!(decoder.finish(), None);
}

#[test]
fn a_cmdline_too_long_for_a_line_is_cut_and_marked() {
    let cmdline: Vec<u8> = (0..3 * MAX_LINE)
        .map(|i| if i % 5 == 0 { 0 } else { b'a' + (i % 26) as u8 })
        .collect();
    let record = Record::Leaked(Leaked {
        pid: 77,
        ended_by: EndedBy::Kill,
        comm: &b"comm"[..],
        cmdline: &cmdline[..],
        truncated: false,
    });
    let line = encode(&record);
    assert!(line.len() <= MAX_LINE, "{}", line.len());
    assert!(line.ends_with(b" trunc=1\n"));
    let [Ok(Record::Leaked(leaked))] = &decode_all(&line)[..] else {
        panic!("{:?}", decode_all(&line));
    };
    assert!(leaked.truncated);
    assert!(leaked.cmdline.len() > 1000);
    assert!(cmdline.starts_with(&leaked.cmdline));
}

#[test]
fn unknown_kinds_and_keys_are_skipped() {
    let got = decode_all(b"UT1 hello minor=9 pid=1 mode=pid1 scope=child drain_ms=0 future=yes\nsnapshot pid=3 x=y\nmain pid=3 extra=1\n");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(got[0], Ok(Record::Hello(Hello { minor: 9, .. }))));
    assert_eq!(got[1], Ok(Record::MainStarted { pid: 3 }));
}

#[test]
fn a_newer_major_version_is_an_error_and_its_records_are_skipped() {
    let got = decode_all(b"UT2 hello minor=0\nmain pid=3\nUT1 hello minor=0 pid=1 mode=pid1 scope=child drain_ms=0\nmain pid=4\n");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[0],
        Err(ParseError::UnsupportedVersion { line: 1, major: 2 })
    );
    assert!(matches!(got[1], Ok(Record::Hello(_))));
    assert_eq!(got[2], Ok(Record::MainStarted { pid: 4 }));
}

#[test]
fn exit_codes_follow_the_shell_convention() {
    assert_eq!(Status::Exited(3).code(), 3);
    assert_eq!(Status::Signaled(15).code(), 143);
    assert_eq!(Status::Signaled(9).code(), 137);
}
