//! The report channel's decoder on arbitrary bytes, in arbitrary chunkings: it must never
//! panic, must yield the same records and errors however the stream is cut into reads, and
//! every record it yields must survive the encoder: encoded again and decoded, it is the
//! same record.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use undertaker_report::{Decoder, LineBuf, OwnedRecord, ParseError, MAX_LINE};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Where the stream is cut into reads (each taken modulo the stream's length).
    cuts: Vec<u16>,
    stream: Vec<u8>,
}

/// Everything a decoder yields for `reads`, then what `finish` says.
fn decode(reads: &[&[u8]]) -> (Vec<Result<OwnedRecord, ParseError>>, Option<ParseError>) {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for read in reads {
        out.extend(decoder.feed(read));
    }
    (out, decoder.finish())
}

fn reads<'a>(stream: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    if stream.is_empty() {
        return vec![stream];
    }
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| usize::from(*cut) % stream.len())
        .collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &stream[w[0]..w[1]]).collect()
}

/// The room the encoder keeps for what follows a long value: a re-encoded line this close
/// to the limit may be cut where the original was not, which is no bug.
const NEAR_THE_LIMIT: usize = MAX_LINE - 128;

fuzz_target!(|input: Input| {
    let whole = decode(&[&input.stream]);
    let chunked = decode(&reads(&input.stream, &input.cuts));
    assert_eq!(whole, chunked, "the chunking changed what was decoded");
    if input.stream.len() <= 256 {
        let bytes: Vec<&[u8]> = input.stream.chunks(1).collect();
        assert_eq!(whole, decode(&bytes), "byte-by-byte reads changed it");
    }

    let mut line = LineBuf::new();
    for record in whole.0.iter().flatten() {
        let encoded = line.encode(record).to_vec();
        assert!(encoded.len() <= MAX_LINE, "an encoded line is too long");
        if encoded.len() >= NEAR_THE_LIMIT {
            continue;
        }
        let (again, end) = decode(&[&encoded]);
        assert_eq!(end, None, "an encoded line did not end with its newline");
        assert_eq!(
            again.as_slice(),
            [Ok(record.clone())],
            "re-encoded as {:?}",
            String::from_utf8_lossy(&encoded)
        );
    }
});
