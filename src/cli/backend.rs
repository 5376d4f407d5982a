//! What the commands talk to: the store file opened in this process ([`Local`], as owner), or
//! the daemon over its socket ([`Client`]). Both implement [`Api`]; this enum only picks one,
//! so every command is written once against [`Api`].

use crate::Client;
use crate::error::Result;
use crate::ops::{Api, Local, Operation};
use crate::types::{Channel, SecretValue, SetRequest, ValueRef};

/// The file or the daemon.
// One per process, made once: the size of the `Local` variant (the unlocked store) costs
// nothing, and boxing it would only add an indirection to every call.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// The store file, unlocked in this process.
    Local(Local),
    /// `tresord` over its socket.
    Daemon(Client),
}

impl Api for Backend {
    fn call<O: Operation>(&self, op: O) -> Result<O::Output> {
        match self {
            Self::Local(l) => l.call(op),
            Self::Daemon(c) => Api::call(c, op),
        }
    }

    fn channel(&self) -> Channel {
        match self {
            Self::Local(l) => l.channel(),
            Self::Daemon(c) => c.channel(),
        }
    }

    fn whoami(&self) -> Result<Option<String>> {
        match self {
            Self::Local(l) => l.whoami(),
            Self::Daemon(c) => c.whoami(),
        }
    }

    fn read(&self, value: &ValueRef) -> Result<SecretValue> {
        match self {
            Self::Local(l) => l.read(value),
            Self::Daemon(c) => c.read(value),
        }
    }

    fn read_values(&self, values: &[ValueRef]) -> Vec<Result<SecretValue>> {
        match self {
            Self::Local(l) => l.read_values(values),
            Self::Daemon(c) => c.read_values(values),
        }
    }

    fn set_many(&self, items: Vec<(String, SetRequest)>) -> Result<usize> {
        match self {
            Self::Local(l) => l.set_many(items),
            Self::Daemon(c) => c.set_many(items),
        }
    }
}
