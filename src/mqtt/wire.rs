//! Wire primitives shared by every packet: integers, variable byte integers, UTF-8 strings,
//! binary data, string pairs. Reading never panics and never allocates from a length it has
//! not checked against the bytes actually present.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{EncodeError, Malformed};

/// The largest value a variable byte integer can hold (four bytes, 7 bits each).
pub(crate) const MAX_VARINT: u32 = 268_435_455;

/// A cursor over the body of one frame. Every read checks the bytes left first, so a
/// truncated packet is a [`Malformed::Truncated`] error, never a panic.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize) -> Result<(), Malformed> {
        if self.buf.len() < n {
            Err(Malformed::Truncated)
        } else {
            Ok(())
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Malformed> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// A variable byte integer of at most four bytes.
    pub(crate) fn varint(&mut self) -> Result<u32, Malformed> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed::VariableByteInteger)
    }

    /// The next `n` bytes, sharing the frame's buffer (no copy).
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, Malformed> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Everything left, sharing the frame's buffer (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// A sub-reader over the next `n` bytes (a property list).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, Malformed> {
        Ok(Reader::new(self.bytes(n)?))
    }

    /// Binary data: a two-byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, Malformed> {
        let len = usize::from(self.u16()?);
        self.bytes(len)
    }

    /// A UTF-8 encoded string: well formed (no surrogates, no overlong forms, which
    /// `str::from_utf8` already rejects) and without U+0000.
    pub(crate) fn string(&mut self) -> Result<String, Malformed> {
        let raw = self.binary()?;
        let text = std::str::from_utf8(&raw).map_err(|_| Malformed::InvalidUtf8)?;
        if text.contains('\0') {
            return Err(Malformed::NullCharacter);
        }
        Ok(text.to_owned())
    }
}

/// Number of bytes a variable byte integer takes.
pub(crate) fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a variable byte integer; values past [`MAX_VARINT`] are refused.
pub(crate) fn put_varint(buf: &mut BytesMut, value: usize) -> Result<(), EncodeError> {
    if value > MAX_VARINT as usize {
        return Err(EncodeError::PacketTooLarge(value));
    }
    let mut rest = value;
    loop {
        let mut byte = (rest % 128) as u8;
        rest /= 128;
        if rest > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if rest == 0 {
            return Ok(());
        }
    }
}

/// Writes binary data with its two-byte length.
pub(crate) fn put_binary(buf: &mut BytesMut, data: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(data.len()).map_err(|_| EncodeError::FieldTooLong(data.len()))?;
    buf.put_u16(len);
    buf.put_slice(data);
    Ok(())
}

/// Writes a UTF-8 string with its two-byte length.
pub(crate) fn put_string(buf: &mut BytesMut, text: &str) -> Result<(), EncodeError> {
    put_binary(buf, text.as_bytes())
}

/// Encoded size of a string or binary field, length prefix included.
pub(crate) fn field_len(data: &[u8]) -> usize {
    2 + data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(value: usize) -> Vec<u8> {
        let mut buf = BytesMut::new();
        put_varint(&mut buf, value).unwrap();
        buf.to_vec()
    }

    #[test]
    fn varint_boundaries_from_the_spec() {
        // MQTT 5.0 §1.5.5, table 1-1.
        for (value, bytes) in [
            (0, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_151, vec![0xff, 0xff, 0x7f]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
            (268_435_455, vec![0xff, 0xff, 0xff, 0x7f]),
        ] {
            assert_eq!(varint_bytes(value), bytes, "encode {value}");
            assert_eq!(varint_len(value), bytes.len());
            let mut r = Reader::new(Bytes::from(bytes));
            assert_eq!(r.varint().unwrap() as usize, value, "decode {value}");
        }
    }

    #[test]
    fn varint_longer_than_four_bytes_is_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x01]));
        assert_eq!(r.varint(), Err(Malformed::VariableByteInteger));
        assert!(put_varint(&mut BytesMut::new(), 268_435_456).is_err());
    }

    #[test]
    fn strings_reject_bad_utf8_and_nul() {
        // A lone surrogate encoded in UTF-8 (ED A0 80) and an overlong '/' (C0 AF).
        for bad in [
            &[0x00, 0x03, 0xed, 0xa0, 0x80][..],
            &[0x00, 0x02, 0xc0, 0xaf],
        ] {
            let mut r = Reader::new(Bytes::copy_from_slice(bad));
            assert_eq!(r.string(), Err(Malformed::InvalidUtf8));
        }
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, b'a', 0x00, b'b']));
        assert_eq!(r.string(), Err(Malformed::NullCharacter));
        // The spec's example: "A\u{2A6D4}" (§1.5.4, figure 1-1).
        let mut r = Reader::new(Bytes::from_static(&[
            0x00, 0x05, 0x41, 0xf0, 0xaa, 0x9b, 0x94,
        ]));
        assert_eq!(r.string().unwrap(), "A\u{2A6D4}");
    }

    #[test]
    fn truncated_reads_are_errors() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a']));
        assert_eq!(r.string(), Err(Malformed::Truncated));
        let mut r = Reader::new(Bytes::from_static(&[0x01]));
        assert_eq!(r.u16(), Err(Malformed::Truncated));
    }
}
