//! A fault-injecting redb storage backend, in the manner of redb's own crash tests: the bytes a
//! crash would leave are the durable image, which advances only when `sync_data` completes.
//! It can crash at the Nth sync (the writes since the last sync then dropped, applied, or torn
//! at 512-byte sectors) and fail the Nth write or sync with an OS error, once or until healed.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io;
use std::sync::{Arc, Mutex};

use redb::StorageBackend;
use tresor::testing::BackendFactory;

/// The sector a torn write is cut at.
pub const SECTOR: usize = 512;

/// What happens to the writes since the last sync when the machine crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Torn {
    /// None of them reached the disk.
    Dropped,
    /// All of them did (the sync's effect, without its acknowledgement).
    Applied,
    /// Each 512-byte sector of each write did or did not, chosen by this seed; so did the
    /// file's new length.
    Sectors(u64),
}

/// Which call a planned failure hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `write`.
    Write,
    /// `sync_data`.
    Sync,
}

/// A planned failure: the `nth` call (from 1, counted since arming) fails with `errno`; with
/// `sticky`, every later call of that kind fails too until [`Disk::heal`].
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    /// Which call.
    pub call: Call,
    /// The call's number.
    pub nth: u64,
    /// `libc` errno: 28 ENOSPC, 5 EIO.
    pub errno: i32,
    /// Whether it lasts.
    pub sticky: bool,
}

#[derive(Debug, Default)]
struct State {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last completed sync, in order.
    pending: Vec<(usize, Vec<u8>)>,
    writes: u64,
    syncs: u64,
    crash_at_sync: Option<u64>,
    crashed: bool,
    failure: Option<Failure>,
    failing: bool,
    /// A scratch disk ([`Disk::scratch`]): nothing durable is tracked.
    scratch: bool,
}

/// One simulated disk holding one file. Clones share it; [`Disk::factory`] hands redb a fresh
/// handle onto it for every (re)open.
#[derive(Clone, Debug, Default)]
pub struct Disk(Arc<Mutex<State>>);

/// A crash: the durable image, and the writes that were in flight.
#[derive(Clone, Debug)]
pub struct Crash {
    durable: Vec<u8>,
    live_len: usize,
    pending: Vec<(usize, Vec<u8>)>,
}

impl Disk {
    /// A disk holding `image`, all of it durable.
    pub fn from_image(image: &[u8]) -> Self {
        let d = Self::default();
        {
            let mut s = d.0.lock().unwrap();
            s.live = image.to_vec();
            s.durable = image.to_vec();
        }
        d
    }

    /// A disk holding `image` that never crashes nor fails: for checking an image, where
    /// copying the whole image at every sync (to track what is durable) is wasted work.
    pub fn scratch(image: &[u8]) -> Self {
        let d = Self::default();
        {
            let mut s = d.0.lock().unwrap();
            s.live = image.to_vec();
            s.scratch = true;
        }
        d
    }

    /// A factory of redb backends onto this disk.
    pub fn factory(&self) -> BackendFactory {
        let d = self.clone();
        Arc::new(move || Box::new(d.clone()) as Box<dyn StorageBackend>)
    }

    /// Restarts the counters: the next sync is sync 1, the next write write 1.
    pub fn arm(&self, crash_at_sync: Option<u64>, failure: Option<Failure>) {
        let mut s = self.0.lock().unwrap();
        s.writes = 0;
        s.syncs = 0;
        s.crash_at_sync = crash_at_sync;
        s.failure = failure;
        s.failing = false;
    }

    /// Ends a sticky failure (space freed, device replaced).
    pub fn heal(&self) {
        let mut s = self.0.lock().unwrap();
        s.failure = None;
        s.failing = false;
    }

    /// Syncs since arming.
    pub fn syncs(&self) -> u64 {
        self.0.lock().unwrap().syncs
    }

    /// Writes since arming.
    pub fn writes(&self) -> u64 {
        self.0.lock().unwrap().writes
    }

    /// Whether the planned crash happened.
    pub fn crashed(&self) -> bool {
        self.0.lock().unwrap().crashed
    }

    /// The durable bytes (what a crash now would leave with every in-flight write dropped).
    pub fn durable(&self) -> Vec<u8> {
        self.0.lock().unwrap().durable.clone()
    }

    /// Whether every write has been synced.
    pub fn settled(&self) -> bool {
        let s = self.0.lock().unwrap();
        s.pending.is_empty() && s.live == s.durable
    }

    /// The crash that happened (or would happen now).
    pub fn crash(&self) -> Crash {
        let s = self.0.lock().unwrap();
        Crash {
            durable: s.durable.clone(),
            live_len: s.live.len(),
            pending: s.pending.clone(),
        }
    }

    fn fails(s: &mut State, call: Call) -> io::Result<()> {
        let n = match call {
            Call::Write => s.writes,
            Call::Sync => s.syncs,
        };
        if let Some(f) = s.failure.filter(|f| f.call == call)
            && (n == f.nth || (f.sticky && s.failing))
        {
            s.failing = f.sticky;
            return Err(io::Error::from_raw_os_error(f.errno));
        }
        Ok(())
    }
}

impl Crash {
    /// Every byte sequence a crash image can be made of: the durable image and each write in
    /// flight.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.durable.as_slice())
            .chain(self.pending.iter().map(|(_, d)| d.as_slice()))
    }

    /// The bytes left on the disk after the crash, for one fate of the in-flight writes.
    pub fn image(&self, torn: Torn) -> Vec<u8> {
        let mut img = self.durable.clone();
        let mut rng = match torn {
            Torn::Dropped => return img,
            Torn::Applied => 0,
            Torn::Sectors(seed) => seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        };
        let mut coin = || {
            // xorshift64*: enough to pick sectors, reproducible from the seed.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 63 == 1
        };
        let applied = matches!(torn, Torn::Applied);
        if applied || coin() {
            img.resize(self.live_len.max(img.len()), 0);
        }
        for (off, data) in &self.pending {
            let mut at = *off;
            let end = off + data.len();
            while at < end {
                let next = ((at / SECTOR) + 1) * SECTOR;
                let stop = next.min(end);
                if (applied || coin()) && stop <= img.len() {
                    img[at..stop].copy_from_slice(&data[at - off..stop - off]);
                }
                at = stop;
            }
        }
        img
    }
}

fn dead() -> io::Error {
    io::Error::other("the simulated machine crashed")
}

impl StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        let s = self.0.lock().unwrap();
        if s.crashed {
            return Err(dead());
        }
        Ok(s.live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let s = self.0.lock().unwrap();
        if s.crashed {
            return Err(dead());
        }
        let at = usize::try_from(offset).unwrap();
        let src = s
            .live
            .get(at..at + out.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        if s.crashed {
            return Err(dead());
        }
        s.live.resize(usize::try_from(len).unwrap(), 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        if s.crashed {
            return Err(dead());
        }
        s.syncs += 1;
        if s.crash_at_sync == Some(s.syncs) {
            s.crashed = true;
            return Err(dead());
        }
        Disk::fails(&mut s, Call::Sync)?;
        if s.scratch {
            return Ok(());
        }
        let State { live, durable, .. } = &mut *s;
        durable.clone_from(live);
        s.pending.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        if s.crashed {
            return Err(dead());
        }
        s.writes += 1;
        Disk::fails(&mut s, Call::Write)?;
        let at = usize::try_from(offset).unwrap();
        if s.live.len() < at + data.len() {
            s.live.resize(at + data.len(), 0);
        }
        s.live[at..at + data.len()].copy_from_slice(data);
        if !s.scratch {
            s.pending.push((at, data.to_vec()));
        }
        Ok(())
    }
}
