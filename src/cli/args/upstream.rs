//! `provider` and `sync` (SPEC §11).

use clap::{Args, Subcommand};

/// `provider`.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Add (or replace) a provider; its credentials are names of tresor secrets
    Add(ProviderAddArgs),
    /// List providers
    Ls,
    /// Remove a provider (refused while remote secrets use it, unless --force)
    Rm {
        /// The provider
        name: String,
        /// Remove even when remote secrets use it
        #[arg(long)]
        force: bool,
    },
    /// Log in to a provider and check its token
    Test {
        /// The provider
        name: String,
    },
}

/// `provider add`.
#[derive(Debug, Args)]
pub struct ProviderAddArgs {
    /// The provider's name
    pub name: String,
    /// openbao or vault
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// Its address, http(s)://HOST[:PORT]
    #[arg(long, value_name = "URL")]
    pub addr: String,
    /// A PEM file of CA certificates to trust
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<String>,
    /// The namespace (X-Vault-Namespace)
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The tresor secret holding a token
    #[arg(
        long,
        value_name = "SECRET",
        required_unless_present = "approle_role_id_secret",
        conflicts_with = "approle_role_id_secret"
    )]
    pub token_secret: Option<String>,
    /// The tresor secret holding an AppRole role id
    #[arg(long, value_name = "SECRET", requires = "approle_secret_id_secret")]
    pub approle_role_id_secret: Option<String>,
    /// The tresor secret holding an AppRole secret id
    #[arg(long, value_name = "SECRET", requires = "approle_role_id_secret")]
    pub approle_secret_id_secret: Option<String>,
    /// Connect and request timeout [default: 2s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// `sync`.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Mirror MOUNT/PATH of a provider into local secrets named MOUNT/PATH (one transaction)
    Pull {
        /// The provider
        provider: String,
        /// MOUNT[/PATH] to mirror [default: secret]
        #[arg(long, value_name = "MOUNT/PATH")]
        prefix: Option<String>,
        /// Report what would change; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Delete local mirrors whose upstream path is gone
        #[arg(long)]
        prune: bool,
    },
    /// Every remote secret: upstream version, last fetch, last error, staleness
    Status,
}
