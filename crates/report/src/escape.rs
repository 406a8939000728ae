//! Escaping of values: printable ASCII other than space and backslash stays as it is, a backslash
//! becomes `\\`, every other byte becomes `\xHH`. An escaped value never holds a space, a newline
//! or a NUL, so a line splits on spaces and a stream on newlines.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `byte` is written as it is.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b'\\'
}

/// How many bytes `byte` takes once escaped.
pub(crate) fn escaped_len(byte: u8) -> usize {
    match byte {
        b'\\' => 2,
        byte if is_plain(byte) => 1,
        _ => 4,
    }
}

/// Escapes `value` into `out`, stopping before the first byte that does not fit whole.
/// Returns (bytes of `value` consumed, bytes of `out` written).
pub fn escape_into(value: &[u8], out: &mut [u8]) -> (usize, usize) {
    let mut written = 0;
    for (consumed, &byte) in value.iter().enumerate() {
        let len = escaped_len(byte);
        if written + len > out.len() {
            return (consumed, written);
        }
        let slot = &mut out[written..written + len];
        match len {
            1 => slot[0] = byte,
            2 => slot.copy_from_slice(b"\\\\"),
            _ => slot.copy_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
        written += len;
    }
    (value.len(), written)
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Undoes [`escape_into`], calling `push` for each byte. `None` for a bad escape sequence or a byte
/// that an encoder never writes as it is.
pub fn unescape(value: &[u8], mut push: impl FnMut(u8)) -> Option<()> {
    let mut bytes = value.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            if !is_plain(byte) {
                return None;
            }
            push(byte);
            continue;
        }
        match bytes.next()? {
            b'\\' => push(b'\\'),
            b'x' => {
                let high = hex_digit(bytes.next()?)?;
                let low = hex_digit(bytes.next()?)?;
                push(high << 4 | low);
            }
            _ => return None,
        }
    }
    Some(())
}
