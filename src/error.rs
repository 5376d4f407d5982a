//! The one public error type.
//!
//! Every variant maps one to one to an API error code (SPEC §6) and to a CLI exit code
//! (SPEC §7). Messages are lowercase, say what was expected and what was found, and never
//! contain a secret value.

use std::fmt;

/// A convenient alias for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tresor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named secret, version, principal or keyslot does not exist (`not_found`, 404).
    #[error("{what} not found: {name}")]
    NotFound {
        /// What kind of thing was looked for (`secret`, `version`, `principal`, ...).
        what: &'static str,
        /// Its name, with scope where that matters (never a value).
        name: String,
    },
    /// The caller may not do this (`permission_denied`, 403).
    #[error("permission denied: {reason}")]
    PermissionDenied {
        /// Why the policy denied it.
        reason: String,
    },
    /// The caller could not be identified, or its credentials are wrong (`unauthenticated`, 401).
    #[error("unauthenticated: {reason}")]
    Unauthenticated {
        /// What was wrong with the credentials.
        reason: String,
    },
    /// A passphrase, key file or recovery key did not open any keyslot (`unauthenticated`, 401;
    /// CLI exit 5).
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The store is locked (`locked`, 423).
    #[error("the store is locked")]
    Locked,
    /// Input that does not parse or is out of range (`invalid_argument`, 400).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field, option or line that was wrong.
        field: String,
        /// What was expected and what was found.
        reason: String,
    },
    /// The operation conflicts with the store's state (`conflict`, 409), such as deleting a secret
    /// that grants still name.
    #[error("conflict: {reason}")]
    Conflict {
        /// What conflicts.
        reason: String,
        /// The references that block the operation (grants, teams, ...).
        references: Vec<String>,
    },
    /// A name resolves to more than one scope (`ambiguous`, 409).
    #[error("ambiguous name {name}: found in {}", scopes.join(" and "))]
    Ambiguous {
        /// The name looked up.
        name: String,
        /// The scopes holding it.
        scopes: Vec<String>,
    },
    /// A request body over the limit (`payload_too_large`, 413).
    #[error("payload too large: {size} bytes, the limit is {limit}")]
    PayloadTooLarge {
        /// The size seen (or a lower bound).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many requests or unlock attempts (`too_many_requests`, 429).
    #[error("too many requests: retry in {retry_after_ms} ms")]
    TooManyRequests {
        /// How long to wait before trying again.
        retry_after_ms: u64,
    },
    /// Data failed authentication or is structurally broken (`integrity`, 500; CLI exit 6).
    /// Says where, never what the bytes were.
    #[error("integrity: {table} record {record} failed authentication or is malformed")]
    Integrity {
        /// The table (or file part) that holds the bad record.
        table: String,
        /// The record's key, printable (a seq, a name hash prefix, a slot id).
        record: String,
    },
    /// The file was written by a newer (or unknown) format version (`internal`, 500).
    #[error(
        "unsupported store format version {found}; this build reads versions 1 to {supported} (a newer tresor wrote this file)"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// A needed service cannot be reached (`unavailable`, 503; CLI exit 8): the store's disk is
    /// full or failing (the write, or the audit record a read needs, did not reach the file;
    /// nothing was acknowledged and the same request succeeds once the cause is gone), or an
    /// upstream provider with no usable cache (SPEC §11).
    #[error("unavailable: {reason}")]
    Unavailable {
        /// What failed and why: the OS error (`no space left on device`), or a provider and
        /// path (never a token).
        reason: String,
    },
    /// An I/O, database or other internal failure (`internal`, 500).
    #[error("internal: {message}")]
    Internal {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// One source error shared by the copies of [`Error::fan_out`]; shows and chains exactly as the
/// error it holds.
struct SharedSource(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The stable API error codes of SPEC §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 404
    NotFound,
    /// 403
    PermissionDenied,
    /// 401
    Unauthenticated,
    /// 423
    Locked,
    /// 400
    InvalidArgument,
    /// 409
    Conflict,
    /// 409
    Ambiguous,
    /// 413
    PayloadTooLarge,
    /// 429
    TooManyRequests,
    /// 500
    Integrity,
    /// 500
    Internal,
    /// 503
    Unavailable,
}

impl ErrorCode {
    /// The snake_case code sent in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::Locked => "locked",
            Self::InvalidArgument => "invalid_argument",
            Self::Conflict => "conflict",
            Self::Ambiguous => "ambiguous",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyRequests => "too_many_requests",
            Self::Integrity => "integrity",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// Parses a snake_case code; unknown codes are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_found" => Self::NotFound,
            "permission_denied" => Self::PermissionDenied,
            "unauthenticated" => Self::Unauthenticated,
            "locked" => Self::Locked,
            "invalid_argument" => Self::InvalidArgument,
            "conflict" => Self::Conflict,
            "ambiguous" => Self::Ambiguous,
            "payload_too_large" => Self::PayloadTooLarge,
            "too_many_requests" => Self::TooManyRequests,
            "integrity" => Self::Integrity,
            "internal" => Self::Internal,
            "unavailable" => Self::Unavailable,
            _ => return None,
        })
    }

    /// The HTTP status of this code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::PermissionDenied => 403,
            Self::Unauthenticated => 401,
            Self::Locked => 423,
            Self::InvalidArgument => 400,
            Self::Conflict | Self::Ambiguous => 409,
            Self::PayloadTooLarge => 413,
            Self::TooManyRequests => 429,
            Self::Integrity | Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The API error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            Self::Unauthenticated { .. } | Self::WrongPassphrase => ErrorCode::Unauthenticated,
            Self::Locked => ErrorCode::Locked,
            Self::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::Ambiguous { .. } => ErrorCode::Ambiguous,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            Self::Integrity { .. } => ErrorCode::Integrity,
            Self::UnsupportedVersion { .. } | Self::Internal { .. } => ErrorCode::Internal,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
        }
    }

    /// The CLI exit code (SPEC §7): 1 error, 3 not found, 4 permission denied, 5 locked or wrong
    /// passphrase, 6 integrity, 7 conflict, 8 unavailable. (2, usage, is the argument parser's.)
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. } => 3,
            Self::PermissionDenied { .. } | Self::Unauthenticated { .. } => 4,
            Self::Locked | Self::WrongPassphrase => 5,
            Self::Integrity { .. } => 6,
            Self::Conflict { .. } | Self::Ambiguous { .. } => 7,
            Self::InvalidArgument { .. } => 2,
            Self::Unavailable { .. } => 8,
            _ => 1,
        }
    }

    /// A hint for people: what to do next. The CLI prints it on a second line.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::WrongPassphrase => "try again, or unlock with --keyfile or a recovery key",
            Self::Locked => "unlock it with `tresor unlock`",
            Self::Integrity { .. } => {
                "the file was changed outside tresor or is damaged; restore it from a backup"
            }
            Self::UnsupportedVersion { .. } => "upgrade tresor to open this store",
            Self::Conflict { references, .. } if !references.is_empty() => {
                "remove the references first, or pass --force"
            }
            Self::Ambiguous { .. } => "name the scope with --scope",
            Self::Unavailable { .. } => {
                "free space on the store's disk or fix the device, or bring the upstream provider \
                 back (see the message); tresord recovers by itself once the cause is gone"
            }
            Self::NotFound { what: "store", .. } => "create one with `tresor init`",
            _ => return None,
        })
    }

    /// Builds an `InvalidArgument`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Builds an `Integrity` error for a table and record.
    pub fn integrity(table: impl Into<String>, record: impl Into<String>) -> Self {
        Self::Integrity {
            table: table.into(),
            record: record.into(),
        }
    }

    /// Builds an `Internal` error with a source.
    pub fn internal(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Builds a `NotFound`.
    pub fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            name: name.into(),
        }
    }

    /// Builds a `PermissionDenied`.
    pub fn denied(reason: impl Into<String>) -> Self {
        Self::PermissionDenied {
            reason: reason.into(),
        }
    }

    /// `n` copies of this error, for one failure shared by several requests (a read batch whose
    /// commit failed): each copy is the same variant with the same fields, and a wrapped source
    /// is shared by all of them rather than flattened into text.
    pub(crate) fn fan_out(self, n: usize) -> Vec<Self> {
        let Self::Internal { message, source } = self else {
            return (0..n).map(|_| self.clone_fields()).collect();
        };
        let shared: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>> =
            source.map(std::sync::Arc::from);
        (0..n)
            .map(|_| Self::Internal {
                message: message.clone(),
                source: shared
                    .clone()
                    .map(|s| Box::new(SharedSource(s)) as Box<dyn std::error::Error + Send + Sync>),
            })
            .collect()
    }

    /// A copy of every variant but `Internal`, whose source cannot be copied (it loses it).
    pub(crate) fn clone_fields(&self) -> Self {
        match self {
            Self::NotFound { what, name } => Self::not_found(what, name.clone()),
            Self::PermissionDenied { reason } => Self::denied(reason.clone()),
            Self::Unauthenticated { reason } => Self::Unauthenticated {
                reason: reason.clone(),
            },
            Self::WrongPassphrase => Self::WrongPassphrase,
            Self::Locked => Self::Locked,
            Self::Unavailable { reason } => Self::Unavailable {
                reason: reason.clone(),
            },
            Self::InvalidArgument { field, reason } => Self::invalid(field.clone(), reason.clone()),
            Self::Conflict { reason, references } => Self::Conflict {
                reason: reason.clone(),
                references: references.clone(),
            },
            Self::Ambiguous { name, scopes } => Self::Ambiguous {
                name: name.clone(),
                scopes: scopes.clone(),
            },
            Self::PayloadTooLarge { size, limit } => Self::PayloadTooLarge {
                size: *size,
                limit: *limit,
            },
            Self::TooManyRequests { retry_after_ms } => Self::TooManyRequests {
                retry_after_ms: *retry_after_ms,
            },
            Self::Integrity { table, record } => Self::integrity(table.clone(), record.clone()),
            Self::UnsupportedVersion { found, supported } => Self::UnsupportedVersion {
                found: *found,
                supported: *supported,
            },
            Self::Internal { message, .. } => Self::Internal {
                message: message.clone(),
                source: None,
            },
        }
    }

    /// The free text a variant's Display adds after its fixed prefix (the whole Display for
    /// variants without one).
    #[cfg(feature = "protocol")]
    pub(crate) fn reason_text(&self) -> String {
        match self {
            Self::PermissionDenied { reason }
            | Self::Unauthenticated { reason }
            | Self::InvalidArgument { reason, .. }
            | Self::Conflict { reason, .. } => reason.clone(),
            Self::Internal { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Rebuilds an error from an API error body: the code picks the variant, the message is
    /// kept as the reason, without the prefix the variant's Display adds again
    /// (`unauthenticated: `, `internal: `). Used by the socket client so that both ends report
    /// the same variant and the same text.
    pub fn from_code(code: ErrorCode, message: &str) -> Self {
        let prefix = match code {
            ErrorCode::PermissionDenied => "permission denied: ",
            ErrorCode::Unauthenticated => "unauthenticated: ",
            ErrorCode::Conflict => "conflict: ",
            ErrorCode::Internal => "internal: ",
            ErrorCode::InvalidArgument => "invalid request: ",
            _ => "",
        };
        let m = message.strip_prefix(prefix).unwrap_or(message).to_owned();
        match code {
            ErrorCode::NotFound => Self::NotFound {
                what: "resource",
                name: m,
            },
            ErrorCode::PermissionDenied => Self::PermissionDenied { reason: m },
            ErrorCode::Unauthenticated if message == "wrong passphrase" => Self::WrongPassphrase,
            ErrorCode::Unauthenticated => Self::Unauthenticated { reason: m },
            ErrorCode::Locked => Self::Locked,
            ErrorCode::InvalidArgument => Self::InvalidArgument {
                field: "request".into(),
                reason: m,
            },
            ErrorCode::Conflict => Self::Conflict {
                reason: m,
                references: Vec::new(),
            },
            ErrorCode::Ambiguous => Self::Ambiguous {
                name: m,
                scopes: Vec::new(),
            },
            ErrorCode::PayloadTooLarge => Self::PayloadTooLarge { size: 0, limit: 0 },
            ErrorCode::TooManyRequests => Self::TooManyRequests { retry_after_ms: 0 },
            ErrorCode::Integrity => Self::Integrity {
                table: m,
                record: String::new(),
            },
            ErrorCode::Internal => Self::Internal {
                message: m,
                source: None,
            },
            ErrorCode::Unavailable => Self::Unavailable { reason: m },
        }
    }
}

macro_rules! internal_from {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Self::internal($what, e)
            }
        }
    )*};
}

internal_from! {
    std::io::Error => "i/o error",
}

/// The OS error of a failed read or write of the store file, or redb's latch after one
/// (`PreviousIo`): the disk, not the data. `None` for everything else.
pub(crate) fn disk_failure(e: &redb::StorageError) -> Option<String> {
    match e {
        redb::StorageError::Io(io) if io.raw_os_error().is_some() => Some(format!(
            "cannot write the store: {}",
            io.to_string().to_lowercase()
        )),
        redb::StorageError::PreviousIo => Some(
            "cannot write the store: an earlier i/o error left the database closed; \
             it is reopened on the next request"
                .into(),
        ),
        _ => None,
    }
}

/// Converts a redb error carrying a [`redb::StorageError`] into `Unavailable` when the disk
/// failed, else into `Internal` with `what`.
macro_rules! storage_from {
    ($($ty:ty => $what:literal, $storage:pat => $inner:ident),* $(,)?) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                if let $storage = &e
                    && let Some(reason) = disk_failure($inner)
                {
                    return Self::Unavailable { reason };
                }
                Self::internal($what, e)
            }
        }
    )*};
}

storage_from! {
    redb::TransactionError => "database transaction failed", redb::TransactionError::Storage(s) => s,
    redb::CommitError => "database commit failed", redb::CommitError::Storage(s) => s,
    redb::TableError => "database table error", redb::TableError::Storage(s) => s,
    redb::StorageError => "database storage error", s => s,
}

impl From<redb::DatabaseError> for Error {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            // redb reports detected corruption through these; to the user this is integrity.
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => {
                Self::integrity("file", "database structure")
            }
            redb::DatabaseError::Storage(s) if disk_failure(&s).is_some() => Self::Unavailable {
                reason: disk_failure(&s).unwrap_or_default(),
            },
            other => Self::internal("cannot open the database", other),
        }
    }
}
