//! The size of a connection's read buffer: most connections are idle, and a buffer sized
//! for the busiest would be most of what each of them holds.

use bytes::BytesMut;

/// The most room made in the read buffer at once: one read takes what fits.
const READ_CHUNK: usize = 64 * 1024;
/// The least: what an idle connection holds (its CONNECT, PINGREQs and small packets fit;
/// a burst doubles the room read by read).
pub(super) const MIN_READ_CHUNK: usize = 256;

/// Sizes a connection's read buffer to its traffic: reads that fill the room double it
/// (up to [`READ_CHUNK`]), short ones halve it, and an empty buffer much larger than
/// needed is given back. Idle connections then hold a few hundred bytes instead of
/// 64 KiB, and busy ones still read in large chunks.
pub(super) struct ReadRoom {
    chunk: usize,
}

impl ReadRoom {
    pub(super) fn new() -> ReadRoom {
        ReadRoom {
            chunk: MIN_READ_CHUNK,
        }
    }

    /// Makes room before a read; returns how much there is.
    pub(super) fn prepare(&self, buf: &mut BytesMut) -> usize {
        if buf.is_empty() && buf.capacity() > 4 * self.chunk {
            *buf = BytesMut::with_capacity(self.chunk);
        } else if buf.capacity() - buf.len() < self.chunk / 8 {
            buf.reserve(self.chunk);
        }
        buf.capacity() - buf.len()
    }

    /// Learns from a read of `read` bytes into `room`.
    pub(super) fn after(&mut self, read: usize, room: usize) {
        if read >= room {
            self.chunk = (self.chunk * 2).min(READ_CHUNK);
        } else if read < self.chunk / 4 {
            self.chunk = (self.chunk / 2).max(MIN_READ_CHUNK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `n` bytes into the room made, as a socket would.
    fn read(room: &mut ReadRoom, buf: &mut BytesMut, n: usize) {
        let made = room.prepare(buf);
        let n = n.min(made);
        buf.extend_from_slice(&vec![0; n]);
        room.after(n, made);
        buf.clear();
    }

    #[test]
    fn a_burst_grows_the_room_and_idleness_gives_it_back() {
        let mut room = ReadRoom::new();
        let mut buf = BytesMut::with_capacity(MIN_READ_CHUNK);
        for _ in 0..12 {
            read(&mut room, &mut buf, usize::MAX);
        }
        assert!(buf.capacity() >= READ_CHUNK);
        // PINGREQs.
        for _ in 0..12 {
            read(&mut room, &mut buf, 2);
        }
        assert!(buf.capacity() <= 4 * MIN_READ_CHUNK, "{}", buf.capacity());
        assert!(room.prepare(&mut buf) > 0);
    }
}
